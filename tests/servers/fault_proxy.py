#!/usr/bin/python3
"""A TCP fault proxy for netpool's chaos tests: sits between clients and a real server and
breaks connections on purpose, per connection or on a schedule.

    /usr/bin/python3 tests/servers/fault_proxy.py --upstream HOST:PORT
        [--listen 127.0.0.1] [--port 0] [--control-port 0]
        [--upstream-cmd JSON-ARRAY] [--seed N] [--chaos]
        [--conn-fault-rate P] [--episode-ms MS] [--strike-ms MS] [--kinds K1,K2,...]
        [--stats-file F]

Every accepted client connection is relayed to --upstream (TLS passes through untouched:
the proxy only sees bytes). Faults (the kinds):

  reset        RST the client connection (SO_LINGER 0, then close), after a random delay
               of 0..1000 ms, so it lands before, during or between requests
  close_after  close both sides (FIN) once N bytes (random 1..4096, both directions) passed
  blackhole    accept, then say nothing: never connect upstream, read and drop what the
               client sends (random: at once, or after N bytes relayed, a mid-session stall)
  latency      delay every chunk in both directions by D ms (random 5..300)
  refuse       an episode: stop listening for 200..1500 ms (connects are refused), then
               listen again on the same port
  restart      an episode: kill the upstream server (SIGKILL) and respawn --upstream-cmd
               after 100..1500 ms (needs --upstream-cmd)
  reset_all    an episode: RST every open client connection at once (a server blip)

With --chaos (or the control command CHAOS ON) each new connection gets one of the
per-connection kinds (the first four) with probability --conn-fault-rate; on average every
--strike-ms a random open connection gets one mid-session (reset now, close after N more
bytes, stall now or after N more bytes, latency from now on); and on average every
--episode-ms an episode kind is drawn. Random choices come from --seed, so a run can be
repeated (timing still varies). Kinds not listed in --kinds are never drawn. Counts are per
kind (mid-session strikes included; "mid_session" counts those separately).

Control: one command per line on the control port, one reply line ("OK ..." or "ERR ..."):
  STATS              OK {"connections": n, "open": n, "faults": {kind: count},
                     "mid_session": n, "upstream_unavailable": n, "unavailable_ms": n,
                     ...} (JSON); connections accepted while the upstream was down are
                     closed at once and counted as upstream_unavailable; unavailable_ms is
                     the time spent in refuse and restart episodes
  CHAOS ON|OFF       start or stop the random schedule. OFF also ends every episode (listens
                     again, upstream running), and resets every connection still under a
                     fault (blackholed, delayed, scheduled to be reset), so what is left
                     open afterwards is plain relaying
  EPISODES           OK [[kind, start, end], ...]: the refuse and restart episodes so far,
                     in CLOCK_MONOTONIC seconds (asyncio's clock; C++ steady_clock on Linux)
  NEXT KIND [ARG]    give the next accepted connection this fault (ARG: bytes for
                     close_after/blackhole, ms for latency/reset)
  RESET_ALL | REFUSE MS | RESTART MS   inject that episode now
  QUIT               exit (as SIGTERM does)

Prints "READY <port> <control-port>" on stdout once both listen (and the upstream command,
if any, accepts connections). Exits when the process that started it is gone, on SIGTERM or
SIGINT, or on QUIT; the upstream child is killed then, and it also dies with the proxy if
the proxy is killed (PR_SET_PDEATHSIG). At exit the counts are printed to stderr as JSON
(and written to --stats-file if given).
"""

import argparse
import asyncio
import ctypes
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys

CONN_KINDS = ("reset", "close_after", "blackhole", "latency")
EPISODE_KINDS = ("refuse", "restart", "reset_all")
ALL_KINDS = CONN_KINDS + EPISODE_KINDS
CHUNK = 65536


def parse_args(argv):
    p = argparse.ArgumentParser(description="TCP fault proxy for netpool's chaos tests")
    p.add_argument("--upstream", required=True, help="HOST:PORT of the real server")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--upstream-cmd", default="",
                   help="JSON array: the command that runs the upstream server (for restart)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--chaos", action="store_true", help="start with the random schedule on")
    p.add_argument("--conn-fault-rate", type=float, default=0.2)
    p.add_argument("--episode-ms", type=int, default=2000)
    p.add_argument("--strike-ms", type=int, default=300)
    p.add_argument("--kinds", default=",".join(ALL_KINDS))
    p.add_argument("--stats-file", default="")
    a = p.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    if not host or not port.isdigit():
        p.error("--upstream must be HOST:PORT")
    a.upstream_host, a.upstream_port = host, int(port)
    a.kinds = [k for k in a.kinds.split(",") if k]
    for k in a.kinds:
        if k not in ALL_KINDS:
            p.error(f"--kinds: unknown kind {k!r} (known: {', '.join(ALL_KINDS)})")
    a.upstream_argv = json.loads(a.upstream_cmd) if a.upstream_cmd else []
    if a.upstream_cmd and (not isinstance(a.upstream_argv, list) or not a.upstream_argv):
        p.error("--upstream-cmd must be a non-empty JSON array of strings")
    if "restart" in a.kinds and not a.upstream_argv:
        a.kinds.remove("restart")
    if not 0.0 <= a.conn_fault_rate <= 1.0:
        p.error("--conn-fault-rate must be in [0, 1]")
    return a


def rst(writer):
    """Closes with a TCP reset: SO_LINGER on with a zero timeout, then close."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


def die_with_parent():
    """In the upstream child, before exec: SIGKILL it when the proxy dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Conn:
    """One client connection and what is being done to it."""

    def __init__(self, proxy, reader, writer, fault):
        self.proxy = proxy
        self.reader = reader
        self.writer = writer
        self.fault = fault  # None or (kind, arg)
        self.up_writer = None
        self.relayed = 0
        self.closed = False
        self.stalled = False
        self.delay = 0.0  # seconds added before relaying each chunk
        self.limit = None  # bytes (both directions) after which limit_kind applies
        self.limit_kind = None
        self.tasks = []

    def faulted(self):
        return self.fault is not None

    def reset(self):
        if self.closed:
            return
        self.closed = True
        rst(self.writer)
        if self.up_writer is not None:
            self.up_writer.transport.abort()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.writer.transport.close()
        if self.up_writer is not None:
            self.up_writer.transport.close()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()

    async def run(self):
        kind, arg = self.fault if self.fault else (None, 0)
        try:
            if kind == "blackhole" and arg == 0:
                await self.drain_client()
                return
            try:
                up_reader, self.up_writer = await asyncio.wait_for(
                    asyncio.open_connection(self.proxy.args.upstream_host, self.proxy.args.upstream_port), 5)
            except (OSError, asyncio.TimeoutError):
                # The upstream is down (a restart in progress): the client sees its connection
                # closed at once, as a real server's accept-then-crash would look.
                self.proxy.counts["upstream_unavailable"] += 1
                self.close()
                return
            if kind == "reset":
                self.tasks.append(asyncio.create_task(self.reset_later(arg)))
            if kind == "latency":
                self.delay = arg / 1000.0
            elif kind in ("close_after", "blackhole"):
                self.limit, self.limit_kind = arg, kind
            a = asyncio.create_task(self.pump(self.reader, self.up_writer, True))
            b = asyncio.create_task(self.pump(up_reader, self.writer, False))
            self.tasks += [a, b]
            await asyncio.gather(a, b, return_exceptions=True)
        finally:
            self.proxy.conns.discard(self)
            if not self.closed:
                self.close()

    async def reset_later(self, ms):
        await asyncio.sleep(ms / 1000.0)
        self.reset()

    async def drain_client(self):
        """Blackhole: read and drop until the client goes away (or the proxy calms down)."""
        try:
            while not self.closed:
                data = await self.reader.read(CHUNK)
                if not data:
                    break
        except (OSError, asyncio.CancelledError):
            pass

    def strike(self, kind, arg):
        """A fault on a connection already relaying (mid-session), from the schedule."""
        self.fault = (kind, arg)
        if kind == "reset":
            self.reset()
        elif kind == "latency":
            self.delay = arg / 1000.0
        elif kind == "close_after":
            self.limit, self.limit_kind = self.relayed + arg, kind
        elif kind == "blackhole":
            self.limit, self.limit_kind = self.relayed + arg, kind
            if arg == 0:
                self.stall()

    def stall(self):
        """Blackhole from now on: relay nothing more; the client's socket stays open and what
        it sends is dropped."""
        self.stalled = True
        if self.up_writer is not None:
            self.up_writer.transport.close()

    async def pump(self, reader, writer, from_client):
        try:
            while not self.closed:
                data = await reader.read(CHUNK)
                if not data:
                    if self.stalled:
                        # Blackholed mid-session: the upstream side is gone on purpose; the
                        # client side ends only when the client closes.
                        if from_client:
                            self.close()
                        return
                    # EOF from one side: pass the FIN on, then let the other side finish.
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                if self.stalled:
                    continue  # blackholed: read and drop
                if self.delay > 0:
                    await asyncio.sleep(self.delay)
                    if self.stalled or self.closed:
                        continue
                if self.limit is not None:
                    data = data[:max(self.limit - self.relayed, 0)]
                self.relayed += len(data)
                if data:
                    writer.write(data)
                    await writer.drain()
                if self.limit is not None and self.relayed >= self.limit:
                    if self.limit_kind == "close_after":
                        self.close()
                        return
                    self.stall()  # blackhole after N bytes
        except ConnectionResetError:
            # One side reset: pass the reset on to the other.
            self.reset()
        except (OSError, asyncio.CancelledError):
            self.close()


class Proxy:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.counts = {k: 0 for k in ALL_KINDS}
        self.counts["connections"] = 0
        self.counts["upstream_unavailable"] = 0
        self.counts["upstream_spawn_failures"] = 0
        self.counts["mid_session"] = 0
        self.conns = set()
        self.server = None
        self.port = args.port
        self.chaos = False
        self.next_faults = []
        self.upstream = None
        self.chaos_tasks = []
        self.episode_lock = asyncio.Lock()
        self.listening = False
        self.unavailable_s = 0.0  # time spent in refuse and restart episodes
        self.episodes = []  # [kind, start, end] of each, in CLOCK_MONOTONIC seconds

    # --- upstream process ------------------------------------------------------------------
    async def upstream_accepts(self):
        """True once the running upstream accepts a connection (up to 10 s); False if it
        exits or stays deaf."""
        for _ in range(200):
            if self.upstream is None or self.upstream.poll() is not None:
                return False
            try:
                _, w = await asyncio.open_connection(self.args.upstream_host, self.args.upstream_port)
                w.transport.abort()
                return True
            except OSError:
                await asyncio.sleep(0.05)
        return False

    async def start_upstream(self):
        """Spawns the upstream command and waits until it accepts connections. A spawn that
        exits at once (e.g. its port still held for a moment) is retried."""
        if not self.args.upstream_argv:
            return
        for _ in range(20):
            self.upstream = subprocess.Popen(self.args.upstream_argv, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, preexec_fn=die_with_parent)
            if await self.upstream_accepts():
                return
            self.kill_upstream()
            self.counts["upstream_spawn_failures"] += 1
            await asyncio.sleep(0.1)
        raise RuntimeError("the upstream command does not start (20 attempts)")

    def kill_upstream(self):
        if self.upstream is not None and self.upstream.poll() is None:
            self.upstream.kill()
            self.upstream.wait()
        self.upstream = None

    # --- listening -------------------------------------------------------------------------
    async def listen(self):
        if self.listening:
            return
        self.server = await asyncio.start_server(self.accept, self.args.listen, self.port, reuse_address=True,
                                                 limit=CHUNK)
        self.port = self.server.sockets[0].getsockname()[1]
        self.listening = True

    async def stop_listening(self):
        if not self.listening:
            return
        self.listening = False
        # close() shuts the listening socket at once (connects are refused from now on);
        # wait_closed() is not awaited: newer Pythons wait there for every open connection.
        self.server.close()

    # --- faults ----------------------------------------------------------------------------
    def draw_conn_fault(self):
        if self.next_faults:
            return self.next_faults.pop(0)
        if not self.chaos:
            return None
        kinds = [k for k in CONN_KINDS if k in self.args.kinds]
        if not kinds or self.rng.random() >= self.args.conn_fault_rate:
            return None
        kind = self.rng.choice(kinds)
        if kind == "reset":
            return kind, self.rng.randint(0, 1000)
        if kind == "close_after":
            return kind, self.rng.randint(1, 4096)
        if kind == "blackhole":
            return kind, self.rng.choice([0, self.rng.randint(1, 4096)])
        return kind, self.rng.randint(5, 300)

    async def accept(self, reader, writer):
        if not self.listening:
            # Accepted just as the listener closed: treat it as refused.
            rst(writer)
            return
        self.counts["connections"] += 1
        fault = self.draw_conn_fault()
        if fault is not None:
            self.counts[fault[0]] += 1
        c = Conn(self, reader, writer, fault)
        self.conns.add(c)
        await c.run()

    async def episode(self, kind, ms):
        async with self.episode_lock:
            self.counts[kind] += 1
            if kind == "reset_all":
                for c in list(self.conns):
                    c.reset()
                return
            # The server is unreachable from here until the episode ends (or is cancelled by
            # CHAOS OFF, which then makes it reachable again before it answers).
            started = asyncio.get_running_loop().time()
            try:
                if kind == "refuse":
                    await self.stop_listening()
                    await asyncio.sleep(ms / 1000.0)
                    await self.listen()
                elif kind == "restart":
                    self.kill_upstream()
                    await asyncio.sleep(ms / 1000.0)
                    await self.start_upstream()
            finally:
                ended = asyncio.get_running_loop().time()
                self.unavailable_s += ended - started
                self.episodes.append([kind, started, ended])

    async def schedule(self):
        kinds = [k for k in EPISODE_KINDS if k in self.args.kinds]
        if not kinds:
            return
        while True:
            await asyncio.sleep(self.rng.expovariate(1000.0 / self.args.episode_ms))
            kind = self.rng.choice(kinds)
            ms = self.rng.randint(200, 1500) if kind == "refuse" else self.rng.randint(100, 1500)
            try:
                await self.episode(kind, ms)
            except (OSError, RuntimeError) as e:
                print(f"fault_proxy: episode {kind} failed: {e}", file=sys.stderr, flush=True)

    async def strikes(self):
        """Faults on connections already relaying: a random open connection, a random kind."""
        kinds = [k for k in CONN_KINDS if k in self.args.kinds]
        if not kinds or self.args.strike_ms <= 0:
            return
        while True:
            await asyncio.sleep(self.rng.expovariate(1000.0 / self.args.strike_ms))
            victims = sorted((c for c in self.conns if not c.faulted() and not c.closed), key=id)
            if not victims:
                continue
            c = self.rng.choice(victims)
            kind = self.rng.choice(kinds)
            arg = {"reset": 0, "close_after": self.rng.randint(0, 2048), "latency": self.rng.randint(5, 300),
                   "blackhole": self.rng.choice([0, self.rng.randint(1, 2048)])}[kind]
            self.counts[kind] += 1
            self.counts["mid_session"] += 1
            c.strike(kind, arg)

    async def set_chaos(self, on):
        if on and not self.chaos:
            self.chaos = True
            self.chaos_tasks = [asyncio.create_task(self.schedule()), asyncio.create_task(self.strikes())]
        elif not on:
            self.chaos = False
            self.next_faults.clear()
            for t in self.chaos_tasks:
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    pass
            self.chaos_tasks = []
            async with self.episode_lock:
                await self.listen()
                # An episode cancelled half-way may have left it dead or still starting.
                if self.args.upstream_argv and not await self.upstream_accepts():
                    self.kill_upstream()
                    await self.start_upstream()
            for c in list(self.conns):
                if c.faulted():
                    c.reset()

    def stats(self):
        return {
            "connections": self.counts["connections"],
            "open": len(self.conns),
            "upstream_unavailable": self.counts["upstream_unavailable"],
            "upstream_spawn_failures": self.counts["upstream_spawn_failures"],
            "mid_session": self.counts["mid_session"],
            "unavailable_ms": round(self.unavailable_s * 1000),
            "faults": {k: self.counts[k] for k in ALL_KINDS},
        }

    # --- control ---------------------------------------------------------------------------
    async def control(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                reply = await self.command(line.decode("ascii", "replace").split())
                writer.write((reply + "\n").encode())
                await writer.drain()
                if reply == "OK bye":
                    self.stop.set()
                    break
        except OSError:
            pass
        finally:
            writer.close()

    async def command(self, words):
        if not words:
            return "ERR empty command"
        cmd, rest = words[0].upper(), words[1:]
        try:
            if cmd == "STATS":
                return "OK " + json.dumps(self.stats(), sort_keys=True)
            if cmd == "EPISODES":
                return "OK " + json.dumps(self.episodes)
            if cmd == "CHAOS" and len(rest) == 1 and rest[0].upper() in ("ON", "OFF"):
                await self.set_chaos(rest[0].upper() == "ON")
                return "OK chaos " + rest[0].lower()
            if cmd == "NEXT" and rest and rest[0] in CONN_KINDS:
                self.next_faults.append((rest[0], int(rest[1]) if len(rest) > 1 else 0))
                return "OK"
            if cmd == "RESET_ALL":
                await self.episode("reset_all", 0)
                return "OK"
            if cmd == "REFUSE" and len(rest) == 1:
                asyncio.create_task(self.episode("refuse", int(rest[0])))
                return "OK"
            if cmd == "RESTART" and len(rest) == 1:
                if not self.args.upstream_argv:
                    return "ERR no --upstream-cmd to restart"
                await self.episode("restart", int(rest[0]))
                return "OK"
            if cmd == "QUIT":
                return "OK bye"
        except ValueError as e:
            return f"ERR {e}"
        return "ERR unknown command: " + " ".join(words)


async def exit_with_parent(stop):
    """Stops when the process that started the proxy is gone (a crashed test cannot send
    SIGTERM; the orphan must not linger)."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    stop.set()


async def main(argv):
    args = parse_args(argv)
    loop = asyncio.get_running_loop()
    proxy = Proxy(args)
    proxy.stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, proxy.stop.set)
    try:
        await proxy.start_upstream()
        await proxy.listen()
        control = await asyncio.start_server(proxy.control, args.listen, args.control_port, reuse_address=True)
        control_port = control.sockets[0].getsockname()[1]
        if args.chaos:
            await proxy.set_chaos(True)
        print(f"READY {proxy.port} {control_port}", flush=True)
        watchdog = asyncio.create_task(exit_with_parent(proxy.stop))
        await proxy.stop.wait()
        watchdog.cancel()
        control.close()
        for t in proxy.chaos_tasks:
            t.cancel()
        await proxy.stop_listening()
        for c in list(proxy.conns):
            c.close()
    finally:
        proxy.kill_upstream()
        text = json.dumps(proxy.stats(), sort_keys=True)
        print(text, file=sys.stderr, flush=True)
        if args.stats_file:
            with open(args.stats_file, "w", encoding="utf-8") as f:
                f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
