#!/usr/bin/python3
"""A scripted, misbehaving SMTP server for netpool's tests (plain asyncio, no SMTP library).

    /usr/bin/python3 tests/servers/bad_smtp_server.py --scenario NAME
        [--host 127.0.0.1] [--port 0] [--cert F --key F] [--stats F] [--log F]

Outside its one misbehaviour every scenario is a small working SMTP server (EHLO with
PIPELINING, 8BITMIME and ENHANCEDSTATUSCODES, HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
so a client that recovers can go on sending. Scenarios:

  normal               no misbehaviour
  greeting_554         the greeting is "554 5.3.2 ..." (then 503 to everything but QUIT)
  ehlo_no_starttls     EHLO offers AUTH PLAIN LOGIN but no STARTTLS
  starttls_injection   STARTTLS is answered with "220 go ahead\\r\\n" and "250 injected\\r\\n"
                       in one write, then the TLS handshake is attempted (--cert/--key)
  reply_421_mid_session  the first MAIL FROM (of the whole server) gets 421 and the session
                       is closed; later sessions work
  close_during_data    after 354, closes the connection once part of the content arrived
  garbage              answers MAIL FROM with bytes that are not an SMTP reply
  long_line            answers MAIL FROM with a 100 KB reply line
  silent               greets and answers EHLO, then never answers again
  silent_greeting      accepts and never sends anything
  rcpt_mixed           RCPT TO an address containing "reject" gets 550 5.1.1; others 250
  temp_fail_data       the final dot gets 451 4.3.0
  auth_fail            EHLO offers AUTH PLAIN LOGIN (no TLS); every AUTH gets 535 5.7.8
  close_after_dot      takes every message whole (counted "delivered", as a real server may
                       have queued it) and closes the connection without replying to the dot
  rcpt_defer_once      RCPT TO an address containing "defer" gets 451 4.2.0 the first time
                       that address is seen, 250 afterwards; others 250
  temp_fail_data_once  the first final dot gets 451 4.3.0 (counted "rejected"), later ones 250
  early_reply          DATA is answered with "354 ..." and, right behind it in the same
                       socket write (before any content), a premature "250 2.0.0 ..."
                       (with TLS: as a second record); the final dot
                       then gets "554 5.6.0 ...": no message is ever accepted (counted in
                       "early_replies" and "rejected"; "delivered" stays 0)

--stats F  a JSON object rewritten (atomically) after every event: "connections",
           "commands" (each command verb in order: "<conn> <VERB>", plus " tls" once the
           session is TLS), and counters "auth", "mail", "rcpt", "data", "delivered"
           (messages accepted with 250 to the final dot), "delivered_rcpts" (the accepted
           recipients of each delivered message), "rejected" (final dots refused),
           "early_replies" (replies sent before the content: early_reply)
--log F    the same command lines appended as text, one per line

Never writes what AUTH carried. Prints "READY <port>" once listening; exits 0 on SIGTERM.
"""

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys

SCENARIOS = (
    "normal", "greeting_554", "ehlo_no_starttls", "starttls_injection",
    "reply_421_mid_session", "close_during_data", "garbage", "long_line", "silent",
    "silent_greeting", "rcpt_mixed", "temp_fail_data", "auth_fail", "early_reply",
    "close_after_dot", "rcpt_defer_once", "temp_fail_data_once",
)
TLS_SCENARIOS = ("starttls_injection",)


class Stats:
    def __init__(self, stats_path, log_path):
        self.stats_path = stats_path
        self.log_path = log_path
        self.data = {
            "connections": 0, "auth": 0, "mail": 0, "rcpt": 0, "data": 0,
            "delivered": 0, "delivered_rcpts": [], "rejected": 0, "early_replies": 0,
            "commands": [],
        }
        self.write()

    def bump(self, key, n=1):
        self.data[key] += n
        self.write()

    def command(self, conn, verb, tls):
        line = f"{conn} {verb}" + (" tls" if tls else "")
        self.data["commands"].append(line)
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        self.write()

    def write(self):
        if not self.stats_path:
            return
        tmp = self.stats_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.stats_path)


class Closed(Exception):
    """The session is over (client gone, or the scenario closed it)."""


class Session:
    def __init__(self, server, reader, writer, conn):
        self.srv = server
        self.sc = server.scenario
        self.reader = reader
        self.writer = writer
        self.conn = conn
        self.tls = False
        self.mail_from = None
        self.rcpts = []
        self.muted = False  # silent: read, never answer

    async def send(self, data):
        if self.muted:
            return
        if isinstance(data, str):
            data = data.encode("ascii")
        self.writer.write(data)
        await self.writer.drain()

    async def readline(self):
        try:
            line = await self.reader.readline()
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            raise Closed()
        if not line:
            raise Closed()
        return line

    def close(self, abort=False):
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()
        raise Closed()

    async def run(self):
        if self.sc == "silent_greeting":
            self.muted = True
        elif self.sc == "greeting_554":
            await self.send("554 5.3.2 bad.example no service for you\r\n")
        else:
            await self.send("220 bad.example ESMTP scripted test server\r\n")
        while True:
            line = await self.readline()
            text = line.rstrip(b"\r\n").decode("latin-1")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            self.srv.stats.command(self.conn, verb, self.tls)
            if self.sc == "greeting_554" and verb != "QUIT":
                await self.send("503 5.5.1 no service\r\n")
                continue
            handler = getattr(self, "cmd_" + verb, None)
            if handler is None:
                await self.send("502 5.5.2 command not recognized\r\n")
                continue
            await handler(arg)

    # --- commands ---------------------------------------------------------------------------

    async def cmd_EHLO(self, arg):
        lines = ["bad.example hello " + (arg or "stranger"), "PIPELINING", "8BITMIME",
                 "ENHANCEDSTATUSCODES", "SIZE 10485760"]
        if self.srv.tls_context is not None and not self.tls:
            lines.append("STARTTLS")
        if self.sc in ("ehlo_no_starttls", "auth_fail"):
            lines.append("AUTH PLAIN LOGIN")
        text = "".join(f"250-{l}\r\n" for l in lines[:-1]) + f"250 {lines[-1]}\r\n"
        self.reset_transaction()
        await self.send(text)
        if self.sc == "silent":
            self.muted = True

    async def cmd_HELO(self, arg):
        self.reset_transaction()
        await self.send("250 bad.example\r\n")
        if self.sc == "silent":
            self.muted = True

    async def cmd_STARTTLS(self, arg):
        if self.srv.tls_context is None or self.tls:
            await self.send("454 4.7.0 TLS not available\r\n")
            return
        if self.sc == "starttls_injection":
            # The attack: a reply the client must not read as coming from the TLS session.
            await self.send("220 2.0.0 go ahead\r\n250 injected\r\n")
        else:
            await self.send("220 2.0.0 go ahead\r\n")
        try:
            await asyncio.wait_for(self.writer.start_tls(self.srv.tls_context), 5)
        except Exception:  # the client refused to go on (as it should after an injection)
            self.close(abort=True)
        self.tls = True
        self.reset_transaction()

    async def cmd_AUTH(self, arg):
        self.srv.stats.bump("auth")
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if mech == "PLAIN" and not initial:
            await self.send("334 \r\n")
            await self.readline()
        elif mech == "LOGIN":
            if not initial:
                await self.send("334 VXNlcm5hbWU6\r\n")
                await self.readline()
            await self.send("334 UGFzc3dvcmQ6\r\n")
            await self.readline()
        await self.send("535 5.7.8 Authentication credentials invalid\r\n")

    async def cmd_MAIL(self, arg):
        self.srv.stats.bump("mail")
        if self.sc == "reply_421_mid_session" and self.srv.fail_421 > 0:
            self.srv.fail_421 -= 1
            await self.send("421 4.3.2 bad.example shutting down, try later\r\n")
            self.close()
        if self.sc == "garbage":
            await self.send(b"\x00\x17\xfeHTTP/1.1 400 Bad Request\r\nServer: not-smtp\r\n\r\n")
            return
        if self.sc == "long_line":
            await self.send("250 " + "x" * 100_000 + "\r\n")
            return
        self.mail_from = arg
        self.rcpts = []
        await self.send("250 2.1.0 sender ok\r\n")

    async def cmd_RCPT(self, arg):
        self.srv.stats.bump("rcpt")
        if self.mail_from is None:
            await self.send("503 5.5.1 MAIL first\r\n")
            return
        if self.sc == "rcpt_mixed" and "reject" in arg.lower():
            await self.send("550 5.1.1 no such user here\r\n")
            return
        addr = arg.partition(":")[2].strip()
        addr = addr.split(" ")[0].strip("<>")
        if self.sc == "rcpt_defer_once" and "defer" in addr.lower() and addr not in self.srv.deferred:
            self.srv.deferred.add(addr)
            await self.send("451 4.2.0 mailbox busy, try again later\r\n")
            return
        self.rcpts.append(addr)
        await self.send("250 2.1.5 recipient ok\r\n")

    async def cmd_DATA(self, arg):
        self.srv.stats.bump("data")
        if self.mail_from is None or not self.rcpts:
            await self.send("554 5.5.1 no valid recipients\r\n")
            return
        if self.sc == "early_reply":
            # The misbehaviour: a verdict before the content. Both replies leave in one
            # socket write (with TLS: two records in it), so they reach the client together
            # and the test does not depend on timing.
            self.srv.stats.bump("early_replies")  # before the client can see it
            self.writer.writelines([b"354 end with <CRLF>.<CRLF>\r\n",
                                    b"250 2.0.0 premature: nothing was accepted\r\n"])
            await self.writer.drain()
        else:
            await self.send("354 end with <CRLF>.<CRLF>\r\n")
        received = 0
        while True:
            line = await self.readline()
            received += len(line)
            if self.sc == "close_during_data" and received > 0:
                # Part of the content is in: drop the connection without a reply.
                self.close(abort=True)
            if line in (b".\r\n", b".\n"):
                break
        rcpts = self.rcpts
        self.reset_transaction()
        if self.sc == "close_after_dot":
            # Taken whole, then the connection drops before the verdict: the client cannot
            # know the message arrived.
            self.srv.stats.data["delivered_rcpts"].append(rcpts)
            self.srv.stats.bump("delivered")
            self.close(abort=True)
        if self.sc == "temp_fail_data" or (self.sc == "temp_fail_data_once" and not self.srv.failed_data_once):
            self.srv.failed_data_once = True
            self.srv.stats.bump("rejected")
            await self.send("451 4.3.0 temporary failure, try again later\r\n")
            return
        if self.sc == "early_reply":
            self.srv.stats.bump("rejected")
            await self.send("554 5.6.0 content rejected\r\n")
            return
        self.srv.stats.data["delivered_rcpts"].append(rcpts)
        self.srv.stats.bump("delivered")
        await self.send("250 2.0.0 message accepted\r\n")

    async def cmd_RSET(self, arg):
        self.reset_transaction()
        await self.send("250 2.0.0 reset\r\n")

    async def cmd_NOOP(self, arg):
        await self.send("250 2.0.0 ok\r\n")

    async def cmd_QUIT(self, arg):
        await self.send("221 2.0.0 bye\r\n")
        self.close()

    def reset_transaction(self):
        self.mail_from = None
        self.rcpts = []


class Server:
    def __init__(self, args):
        self.scenario = args.scenario
        self.stats = Stats(args.stats, args.log)
        self.tls_context = None
        if args.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
            self.tls_context = ctx
        self.fail_421 = 1
        self.deferred = set()  # rcpt_defer_once: addresses already deferred
        self.failed_data_once = False  # temp_fail_data_once
        self.connections = 0
        self.writers = set()

    async def handle(self, reader, writer):
        self.connections += 1
        self.stats.bump("connections")
        self.writers.add(writer)
        session = Session(self, reader, writer, self.connections)
        try:
            await session.run()
        except (Closed, ConnectionError):
            pass
        finally:
            self.writers.discard(writer)
            try:
                writer.close()
            except Exception:
                pass


def parse_args(argv):
    p = argparse.ArgumentParser(description="misbehaving SMTP server for netpool's tests")
    p.add_argument("--scenario", choices=SCENARIOS, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--stats")
    p.add_argument("--log")
    a = p.parse_args(argv)
    if bool(a.cert) != bool(a.key):
        p.error("--cert and --key go together")
    if a.scenario in TLS_SCENARIOS and not a.cert:
        p.error(f"--scenario {a.scenario} needs --cert and --key")
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
    srv = Server(args)
    loop = asyncio.get_running_loop()
    # limit: the longest line the server buffers (content lines of a test message).
    server = await asyncio.start_server(srv.handle, args.host, args.port, limit=1 << 20,
                                        reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    watchdog = asyncio.create_task(exit_with_parent(stop))
    await stop.wait()
    watchdog.cancel()
    server.close()
    for w in list(srv.writers):
        w.transport.abort()
    try:
        await asyncio.wait_for(server.wait_closed(), 2)
    except asyncio.TimeoutError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
