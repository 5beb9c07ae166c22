#!/usr/bin/python3
"""A real SMTP server for netpool's tests: aiosmtpd (Debian's python3-aiosmtpd) on loopback.

    /usr/bin/python3 tests/servers/smtp_server.py --mode plain|starttls|implicit
        [--host 127.0.0.1] [--port 0] [--cert F --key F] [--user U --password-file F]
        [--require-starttls] [--record DIR] [--max-size N]

--mode plain      no TLS at all (AUTH, if enabled, is then allowed in clear text)
--mode starttls   STARTTLS offered with --cert/--key; AUTH only after it (auth_require_tls)
--mode implicit   TLS from the first byte (as on port 465)
--user/--password-file  enable AUTH PLAIN and LOGIN and require it before MAIL; the
                  password is the file's first line (never on the command line)
--require-starttls  refuse everything but EHLO/STARTTLS/QUIT before STARTTLS
--record DIR      every accepted message is saved as DIR/<n>.eml (n = 1, 2, ...), exactly
                  the bytes aiosmtpd hands the handler (after dot-unstuffing, CRLF line ends,
                  including the CRLF before the final dot), and one JSON line is appended to
                  DIR/index.jsonl: {"n", "mail_from", "rcpt_tos", "size", "sha256", "tls"};
                  DIR/auth.jsonl gets {"mechanism", "success"} per AUTH (never what it
                  carried) and DIR/connections the number of connections accepted so far
--max-size N      the SIZE announced in EHLO (and enforced by aiosmtpd); 0 = none

Prints "READY <port>" on stdout once listening (--port 0: the ephemeral port the kernel
chose). SIGTERM and SIGINT close the listener and the open sessions and exit with status 0.
"""

import argparse
import asyncio
import hashlib
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    """aiosmtpd handler: accepts every message and, with a directory, records it."""

    def __init__(self, record_dir):
        self.record_dir = record_dir
        self.count = 0
        if record_dir:
            os.makedirs(record_dir, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        if isinstance(content, str):  # only with decode_data=True, which we never set
            content = content.encode("utf-8", "surrogateescape")
        self.count += 1
        if self.record_dir:
            n = self.count
            path = os.path.join(self.record_dir, f"{n}.eml")
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(content)
            os.replace(tmp, path)  # a reader never sees half a message
            entry = {
                "n": n,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "tls": session_is_tls(server),
            }
            with open(os.path.join(self.record_dir, "index.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        # The reply goes out after the files are written: once the client has its 250, the
        # record is complete.
        return "250 2.0.0 OK queued"


def session_is_tls(server):
    """True when this SMTP session runs over TLS (STARTTLS or implicit)."""
    transport = getattr(server, "transport", None)
    try:
        return transport is not None and transport.get_extra_info("sslcontext") is not None
    except Exception:
        return False


class Authenticator:
    """AUTH PLAIN and LOGIN against one user and password."""

    def __init__(self, user, password, record_dir):
        self.user = user.encode("utf-8")
        self.password = password.encode("utf-8")
        self.record_dir = record_dir

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (mechanism in ("PLAIN", "LOGIN") and isinstance(auth_data, LoginPassword)
              and auth_data.login == self.user and auth_data.password == self.password)
        if self.record_dir:
            entry = {"mechanism": mechanism, "success": ok, "tls": session_is_tls(server)}
            with open(os.path.join(self.record_dir, "auth.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        # handled=False: aiosmtpd then sends the reply itself (535 5.7.8 on failure); with
        # the default handled=True a failure would get no reply at all.
        return AuthResult(success=ok, handled=False)


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def parse_args(argv):
    p = argparse.ArgumentParser(description="aiosmtpd test server for netpool")
    p.add_argument("--mode", choices=("plain", "starttls", "implicit"), default="plain")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password-file")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--record")
    p.add_argument("--max-size", type=int, default=0)
    a = p.parse_args(argv)
    if a.mode != "plain" and not (a.cert and a.key):
        p.error(f"--mode {a.mode} needs --cert and --key")
    if a.require_starttls and a.mode != "starttls":
        p.error("--require-starttls needs --mode starttls")
    if bool(a.user) != bool(a.password_file):
        p.error("--user and --password-file go together")
    return a


async def exit_with_parent(stop):
    """Stops the server when the process that started it is gone (a test that crashed
    cannot send SIGTERM; the orphan must not linger)."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    stop.set()


async def main(argv):
    args = parse_args(argv)
    loop = asyncio.get_running_loop()

    password = None
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\r\n")
    handler = Recorder(args.record)
    authenticator = Authenticator(args.user, password, args.record) if args.user else None
    tls = server_context(args.cert, args.key) if args.mode != "plain" else None

    sessions = set()
    connections = 0

    def factory():
        nonlocal connections
        connections += 1
        if args.record:
            path = os.path.join(args.record, "connections")
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write(f"{connections}\n")
            os.replace(path + ".tmp", path)
        kwargs = dict(
            data_size_limit=args.max_size if args.max_size > 0 else None,
            hostname="aiosmtpd.test",
            decode_data=False,
            timeout=60,
        )
        if args.mode == "starttls":
            kwargs["tls_context"] = tls
            kwargs["require_starttls"] = args.require_starttls
        if authenticator is not None:
            kwargs["authenticator"] = authenticator
            kwargs["auth_required"] = True
            # STARTTLS: AUTH is offered only after it. Plain: there is no TLS to wait for
            # (tests use it with allow_plaintext_auth). Implicit: the whole session is TLS,
            # and aiosmtpd only counts a STARTTLS upgrade as TLS, so the check is off there.
            kwargs["auth_require_tls"] = args.mode == "starttls"
        smtp = SMTP(handler, **kwargs)
        sessions.add(smtp)
        return smtp

    server = await loop.create_server(
        factory, host=args.host, port=args.port,
        ssl=tls if args.mode == "implicit" else None, reuse_address=True)
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    print(f"READY {port}", flush=True)
    watchdog = asyncio.create_task(exit_with_parent(stop))
    await stop.wait()
    watchdog.cancel()

    server.close()
    for s in list(sessions):
        t = getattr(s, "transport", None)
        if t is not None:
            t.abort()
    try:
        await asyncio.wait_for(server.wait_closed(), 2)
    except asyncio.TimeoutError:
        pass
    return 0


if __name__ == "__main__":
    import logging

    # aiosmtpd logs every session at INFO on "mail.log"; keep stderr for real problems.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(asyncio.run(main(sys.argv[1:])))
