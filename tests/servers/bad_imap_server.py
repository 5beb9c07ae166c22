#!/usr/bin/python3
"""A scripted, misbehaving IMAP server for netpool's tests (plain asyncio, no IMAP library).

    /usr/bin/python3 tests/servers/bad_imap_server.py --scenario NAME
        [--host 127.0.0.1] [--port 0] [--cert F --key F] [--stats F]

Outside its one misbehaviour every scenario is a small working IMAP4rev1 server with one
user (any name; password "pw" unless --password-file) and two mailboxes, INBOX and Archive,
each holding three small fixed messages (UIDVALIDITY 7, UIDs 1..3): CAPABILITY, NOOP,
LOGOUT, LOGIN, AUTHENTICATE PLAIN (with SASL-IR or a continuation), SELECT, EXAMINE,
UID SEARCH (answers every message), UID FETCH (FLAGS, ENVELOPE, RFC822.SIZE, BODY[HEADER]
and BODY[] of the asked UIDs), STARTTLS (with --cert/--key). Scenarios:

  normal              no misbehaviour
  greeting_bye        the greeting is "* BYE ..." and the connection is closed
  preauth             the greeting is "* PREAUTH ...": the session is authenticated already
                      (LOGIN and AUTHENTICATE are then answered BAD, as RFC 9051 says)
  login_no            LOGIN and AUTHENTICATE are answered "NO [AUTHENTICATIONFAILED]"
  login_echo          LOGIN and AUTHENTICATE are answered "NO [AUTHENTICATIONFAILED]" followed by
                      the command as received (quoted strings, literals, base64 as sent): a
                      server that echoes the password back
  login_echo_login    as login_echo, but AUTH=PLAIN is not offered: the client sends LOGIN
                      (the password as a quoted string, or a literal for 8-bit)
  login_escapes       LOGIN and AUTHENTICATE are answered with a NO whose text holds terminal
                      escape sequences (an OSC title change, SGR colours, a C1 CSI, a BEL)
  no_starttls         CAPABILITY does not offer STARTTLS (and LOGINDISABLED is not set)
  starttls_injection  STARTTLS is answered with its OK and "* OK injected" in one write,
                      then the TLS handshake is attempted (needs --cert/--key)
  malformed           the FETCH response is garbage, not an IMAP response
  malformed_parens    the FETCH response has an unbalanced "(" and ends with CRLF
  malformed_literal   the FETCH response has a broken literal marker "{12x}"
  huge_literal        the FETCH response announces a literal of 2,000,000,000 bytes, sends
                      a few bytes of it and then nothing (the connection stays open)
  silent              greets, then never answers anything
  silent_fetch        works up to SELECT, then never answers again
  bye_mid_session     answers the first FETCH (of the whole server) with "* BYE" and closes
                      that connection; later sessions work
  unsolicited_fetch   answers UID FETCH with an endless stream of "* n FETCH (UID u FLAGS ...
                      RFC822.SIZE ... BODY[] {2048} ...)" for UIDs from 1000 up, never asked
                      for, and never with the tagged OK (until the client goes away)
  endless_search      answers UID SEARCH with an endless stream of long "* SEARCH 1 2 3 ..."
                      responses (about 8 KB, 1,900 UIDs each), never with the tagged OK
  many_values         answers UID FETCH with one FETCH response for UID 1 holding 9,000,000
                      values (300 lines of 30,000 atoms, each line under 64 KiB, joined by
                      empty literals {0}: 18 MB), then the tagged OK
  text_brace          answers UID FETCH with "TAG NO [ALERT] quota exceeded {5}": a "{5}" that
                      is status text, not a literal
  logindisabled       before TLS, CAPABILITY announces LOGINDISABLED and no AUTH= mechanism
                      (as Cyrus's default); LOGIN and AUTHENTICATE before TLS are answered
                      "NO [PRIVACYREQUIRED]" (and counted as login attempts)
  nagle               works, but as servers that leave Nagle's algorithm on (no TCP_NODELAY)
                      and write a FETCH's responses and its tagged OK separately: the OK
                      waits for the client's ACK of the responses (a delayed ACK: 40 ms)

--stats F  a JSON object rewritten (atomically) after every event: "connections", "logins"
           (successful), "login_attempts", "selects", "fetches", and "commands"
           ("<conn> <TAG> <COMMAND>" for each command; arguments are never recorded, so
           no password is ever written anywhere); after an endless stream ended (the client
           went away) "stream_bytes" and "stream_responses" it sent.

Prints "READY <port>" once listening; exits 0 on SIGTERM/SIGINT or when its parent is gone.
"""

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import ssl
import sys

SCENARIOS = (
    "normal", "greeting_bye", "preauth", "login_no", "login_echo", "login_echo_login", "login_escapes",
    "no_starttls", "starttls_injection", "malformed",
    "malformed_parens", "malformed_literal", "huge_literal", "silent", "silent_fetch",
    "bye_mid_session", "unsolicited_fetch", "endless_search", "many_values", "text_brace", "nagle",
    "logindisabled",
)
UIDVALIDITY = 7


def message(mailbox, uid):
    return (f"From: bad-server@netpool.test\r\nTo: user@netpool.test\r\n"
            f"Subject: {mailbox} {uid}\r\nMessage-ID: <{mailbox}-{uid}@bad.netpool.test>\r\n"
            f"\r\nBody of {mailbox} message {uid}.\r\n").encode()


class Stats:
    def __init__(self, path):
        self.path = path
        self.data = {"connections": 0, "logins": 0, "login_attempts": 0, "selects": 0, "fetches": 0,
                     "commands": [], "stream_bytes": 0, "stream_responses": 0}
        self.write()

    def bump(self, key):
        self.data[key] += 1
        self.write()

    def command(self, conn, tag, verb):
        self.data["commands"].append(f"{conn} {tag} {verb}")
        self.write()

    def write(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)


class Server:
    def __init__(self, args):
        self.scenario = args.scenario
        self.password = args.password
        self.stats = Stats(args.stats)
        self.ssl = None
        if args.cert:
            self.ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl.load_cert_chain(args.cert, args.key)
        self.conns = 0
        self.fetch_bye_done = False
        self.writers = set()

    async def handle(self, reader, writer):
        if self.scenario == "nagle":
            # asyncio sets TCP_NODELAY on every TCP transport; this scenario is a server that
            # does not.
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        self.conns += 1
        conn = self.conns
        self.writers.add(writer)
        self.stats.bump("connections")
        try:
            await Session(self, conn, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            self.writers.discard(writer)
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - closing a broken transport
                pass


class Session:
    def __init__(self, srv, conn, reader, writer):
        self.srv, self.conn, self.reader, self.writer = srv, conn, reader, writer
        self.authed = False
        self.selected = None
        self.tls = False

    async def send(self, data):
        self.writer.write(data if isinstance(data, bytes) else data.encode())
        await self.writer.drain()

    def caps(self):
        c = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "UIDPLUS"]
        if not self.tls and self.srv.ssl is not None and self.srv.scenario != "no_starttls":
            c.append("STARTTLS")
        disabled = self.srv.scenario == "logindisabled" and not self.tls
        if disabled:
            c.append("LOGINDISABLED")
        if not self.authed and self.srv.scenario != "login_echo_login" and not disabled:
            c.append("AUTH=PLAIN")
        return " ".join(c)

    async def hang(self):
        # Reads and drops whatever comes, never answers, until the peer goes away.
        while await self.reader.read(4096):
            pass

    async def readline(self):
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("closed")
        return line.decode("utf-8", "replace").rstrip("\r\n")

    async def run(self):
        sc = self.srv.scenario
        if sc == "greeting_bye":
            await self.send("* BYE [UNAVAILABLE] Too many connections, try later\r\n")
            return
        if sc == "preauth":
            self.authed = True
            await self.send(f"* PREAUTH [CAPABILITY {self.caps()}] netpool bad server, logged in as you\r\n")
        else:
            await self.send(f"* OK [CAPABILITY {self.caps()}] netpool bad server ready\r\n")
        if sc == "silent":
            await self.hang()
            return
        while True:
            line = await self.readline()
            parts = line.split(" ", 2)
            tag = parts[0] if parts else "*"
            cmd = parts[1].upper() if len(parts) > 1 else ""
            rest = parts[2] if len(parts) > 2 else ""
            if cmd == "UID" and rest:
                sub = rest.split(" ", 1)
                cmd = "UID " + sub[0].upper()
                rest = sub[1] if len(sub) > 1 else ""
            self.srv.stats.command(self.conn, tag, cmd)
            if sc == "silent_fetch" and self.selected is not None:
                await self.hang()
                return
            if not await self.dispatch(tag, cmd, rest):
                return

    async def dispatch(self, tag, cmd, rest):
        sc = self.srv.scenario
        if cmd == "CAPABILITY":
            await self.send(f"* CAPABILITY {self.caps()}\r\n{tag} OK CAPABILITY completed\r\n")
        elif cmd == "NOOP":
            await self.send(f"{tag} OK NOOP completed\r\n")
        elif cmd == "LOGOUT":
            await self.send(f"* BYE Logging out\r\n{tag} OK LOGOUT completed\r\n")
            return False
        elif cmd == "ID":
            await self.send(f"* ID NIL\r\n{tag} OK ID completed\r\n")
        elif cmd == "STARTTLS":
            if self.srv.ssl is None or self.tls or sc == "no_starttls":
                await self.send(f"{tag} BAD STARTTLS not available\r\n")
                return True
            if sc == "starttls_injection":
                await self.send(f"{tag} OK Begin TLS negotiation now\r\n* OK injected\r\n")
            else:
                await self.send(f"{tag} OK Begin TLS negotiation now\r\n")
            await self.writer.start_tls(self.srv.ssl)
            self.tls = True
        elif cmd in ("LOGIN", "AUTHENTICATE") and self.srv.scenario == "logindisabled" and not self.tls:
            self.srv.stats.bump("login_attempts")
            await self.send(f"{tag} NO [PRIVACYREQUIRED] login disabled before TLS\r\n")
        elif cmd in ("LOGIN", "AUTHENTICATE") and self.authed:
            self.srv.stats.bump("login_attempts")
            await self.send(f"{tag} BAD already authenticated\r\n")
        elif cmd == "LOGIN":
            self.srv.stats.bump("login_attempts")
            self.echo = f"{tag} LOGIN {rest}"
            ok = await self.check_login_args(rest)
            await self.login_result(tag, ok)
        elif cmd == "AUTHENTICATE":
            self.srv.stats.bump("login_attempts")
            mech, _, ir = rest.partition(" ")
            if mech.upper() != "PLAIN":
                await self.send(f"{tag} NO [CANNOT] unsupported mechanism\r\n")
                return True
            if not ir:
                await self.send("+ \r\n")
                ir = await self.readline()
            self.echo = f"{tag} AUTHENTICATE {mech} {ir}"
            try:
                fields = base64.b64decode(ir, validate=True).split(b"\0")
                ok = len(fields) == 3 and fields[2].decode("utf-8") == self.srv.password
            except Exception:  # noqa: BLE001 - bad base64 is a failed login
                ok = False
            await self.login_result(tag, ok)
        elif cmd in ("SELECT", "EXAMINE"):
            if not self.authed:
                await self.send(f"{tag} BAD not logged in\r\n")
                return True
            name = rest.strip().strip('"')
            if name.upper() == "INBOX":
                name = "INBOX"
            if name not in ("INBOX", "Archive"):
                self.selected = None
                await self.send(f"{tag} NO [NONEXISTENT] Mailbox doesn't exist: {name}\r\n")
                return True
            self.srv.stats.bump("selects")
            self.selected = name
            mode = "READ-ONLY" if cmd == "EXAMINE" else "READ-WRITE"
            await self.send(
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
                "* 3 EXISTS\r\n* 0 RECENT\r\n"
                f"* OK [UIDVALIDITY {UIDVALIDITY}] UIDs valid\r\n* OK [UIDNEXT 4] Predicted next UID\r\n"
                f"{tag} OK [{mode}] {cmd} completed\r\n")
        elif cmd == "UID SEARCH":
            if self.selected is None:
                await self.send(f"{tag} BAD no mailbox selected\r\n")
                return True
            if self.srv.scenario == "endless_search":
                await self.stream(self.search_chunk)
                return False
            await self.send(f"* SEARCH 1 2 3\r\n{tag} OK SEARCH completed\r\n")
        elif cmd == "UID FETCH":
            if self.selected is None:
                await self.send(f"{tag} BAD no mailbox selected\r\n")
                return True
            self.srv.stats.bump("fetches")
            return await self.fetch(tag, rest)
        else:
            await self.send(f"{tag} BAD unknown command\r\n")
        return True

    async def check_login_args(self, rest):
        # LOGIN user password: atoms, quoted strings or literals ({n} or {n+}).
        args = []
        s = rest
        while s and len(args) < 2:
            s = s.lstrip(" ")
            if s.startswith('"'):
                i, out = 1, ""
                while i < len(s) and s[i] != '"':
                    if s[i] == "\\" and i + 1 < len(s):
                        i += 1
                    out += s[i]
                    i += 1
                args.append(out)
                s = s[i + 1:]
            elif s.startswith("{") and s.endswith("}"):
                spec = s[1:-1]
                plus = spec.endswith("+")
                n = int(spec.rstrip("+"))
                if not plus:
                    await self.send("+ go ahead\r\n")
                data = await self.reader.readexactly(n)
                args.append(data.decode("utf-8", "replace"))
                s = await self.readline()
                self.echo += data.decode("utf-8", "replace") + s
            else:
                word, _, s = s.partition(" ")
                args.append(word)
        return len(args) == 2 and args[1] == self.srv.password

    async def login_result(self, tag, ok):
        if self.srv.scenario == "login_escapes":
            await self.send(f"{tag} NO [AUTHENTICATIONFAILED] \x1b]0;pwned-title\x07\x1b[31mred-text\x1b[0m "
                            "\u009b2J\x07 refused\r\n")
            return
        if self.srv.scenario in ("login_echo", "login_echo_login"):
            echo = getattr(self, "echo", "").replace("\r", " ").replace("\n", " ")
            await self.send(f"{tag} NO [AUTHENTICATIONFAILED] rejected: {echo}\r\n")
            return
        if self.srv.scenario == "login_no" or not ok:
            await self.send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
            return
        self.authed = True
        self.srv.stats.bump("logins")
        await self.send(f"{tag} OK [CAPABILITY {self.caps()}] Logged in\r\n")

    async def stream(self, chunk):
        """Writes chunk(i) (bytes, responses) for i = 0, 1, ... until the peer goes away; then
        records what it sent."""
        sent = responses = 0
        try:
            i = 0
            while True:
                data, n = chunk(i)
                self.writer.write(data)
                await self.writer.drain()
                sent += len(data)
                responses += n
                i += 1
        finally:
            self.srv.stats.data["stream_bytes"] += sent
            self.srv.stats.data["stream_responses"] += responses
            self.srv.stats.write()

    def unsolicited_fetch_chunk(self, i):
        body = (b"Subject: unsolicited\r\n\r\n" + b"x" * 2020 + b"\r\n")[:2048]
        out = []
        for k in range(64):
            u = 1000 + i * 64 + k
            out.append(f"* {u} FETCH (UID {u} FLAGS (\\Seen) RFC822.SIZE {len(body)} BODY[] {{{len(body)}}}\r\n"
                       .encode() + body + b")\r\n")
        return b"".join(out), 64

    def search_chunk(self, i):
        line = "* SEARCH " + " ".join(str(u) for u in range(1, 1901)) + "\r\n"
        return line.encode() * 16, 16

    async def fetch(self, tag, rest):
        sc = self.srv.scenario
        if sc == "bye_mid_session" and not self.srv.fetch_bye_done:
            self.srv.fetch_bye_done = True
            await self.send("* BYE Server shutting down.\r\n")
            return False
        if sc == "malformed":
            await self.send("\x00\x01garbage that is not IMAP at all ))) ((\r\n")
            return True
        if sc == "malformed_parens":
            await self.send("* 1 FETCH (UID 1 FLAGS (\\Seen RFC822.SIZE 10\r\n")
            return True
        if sc == "malformed_literal":
            await self.send("* 1 FETCH (UID 1 BODY[] {12x}\r\nhello world!)\r\n")
            return True
        if sc == "unsolicited_fetch":
            await self.stream(self.unsolicited_fetch_chunk)
            return False
        if sc == "many_values":
            lines = b" ".join([b"a " * 30000 + b"{0}\r\n"] * 300)  # "a a ... {0}" CRLF, 300 times
            head = b"* 1 FETCH (UID 1 FLAGS (\\Seen) X-JUNK ("
            await self.send(head + lines + f"))\r\n{tag} OK FETCH completed\r\n".encode())
            return True
        if sc == "text_brace":
            await self.send(f"{tag} NO [ALERT] quota exceeded {{5}}\r\n")
            return True
        if sc == "huge_literal":
            await self.send("* 1 FETCH (UID 1 RFC822.SIZE 2000000000 BODY[] {2000000000}\r\nFrom: x\r\n")
            await self.hang()
            return False
        uid_set = rest.split(" ", 1)[0]
        uids = set()
        for part in uid_set.split(","):
            lo, _, hi = part.partition(":")
            try:
                lo_n = 3 if lo == "*" else int(lo)
                hi_n = lo_n if not hi else (3 if hi == "*" else int(hi))
            except ValueError:
                await self.send(f"{tag} BAD bad UID set\r\n")
                return True
            for u in range(min(lo_n, hi_n), max(lo_n, hi_n) + 1):
                if 1 <= u <= 3:
                    uids.add(u)
        out = b""
        for u in sorted(uids):
            body = message(self.selected, u)
            header = body[:body.index(b"\r\n\r\n") + 4]
            env = (f'("Mon, 02 Mar 2026 10:0{u}:00 +0000" "{self.selected} {u}" '
                   f'((NIL NIL "bad-server" "netpool.test")) NIL NIL ((NIL NIL "user" "netpool.test")) '
                   f'NIL NIL NIL "<{self.selected}-{u}@bad.netpool.test>")')
            out += (f"* {u} FETCH (UID {u} FLAGS (\\Seen) ENVELOPE {env} RFC822.SIZE {len(body)} "
                    f"BODY[HEADER] {{{len(header)}}}\r\n").encode() + header
            out += f" BODY[] {{{len(body)}}}\r\n".encode() + body + b")\r\n"
        done = f"{tag} OK FETCH completed\r\n".encode()
        if self.srv.scenario == "nagle":
            await self.send(out)  # two writes: the second waits for an ACK of the first
            await self.send(done)
        else:
            await self.send(out + done)
        return True


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--stats")
    p.add_argument("--password-file")
    args = p.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    if args.scenario == "starttls_injection" and not args.cert:
        p.error("starttls_injection needs --cert and --key")
    args.password = "pw"
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            args.password = f.readline().rstrip("\r\n")
    return args


async def exit_with_parent(stop):
    """Stops the server when the process that started it is gone (a crashed test cannot
    send SIGTERM; the orphan must not linger)."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    stop.set()


async def main(argv):
    args = parse_args(argv)
    srv = Server(args)
    server = await asyncio.start_server(srv.handle, args.host, args.port, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    watchdog = asyncio.create_task(exit_with_parent(stop))
    await stop.wait()
    watchdog.cancel()
    server.close()
    for w in list(srv.writers):
        w.transport.abort()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
