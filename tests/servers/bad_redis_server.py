#!/usr/bin/python3
"""A scripted, misbehaving Redis server for netpool's tests (plain asyncio, no Redis library).

    /usr/bin/python3 tests/servers/bad_redis_server.py --scenario NAME [--host 127.0.0.1] [--port 0]

It reads RESP commands (arrays of bulk strings) and answers PING with +PONG, QUIT with +OK
(then closes), AUTH and SELECT with +OK, SET with +OK and GET with a bulk string "value",
except where the scenario misbehaves:

  normal     no misbehaviour
  malformed  GET is answered "?garbage\\r\\n": not a RESP type byte
  oversized  GET is answered "$1000000000\\r\\n" and 3 bytes of it, then nothing (the
             connection stays open)
  silent     never answers anything (the connection stays open until the client goes)

Prints "READY <port>" once listening; exits 0 on SIGTERM/SIGINT or when its parent is gone.
"""

import argparse
import asyncio
import os
import signal
import sys


async def read_command(reader):
    """One RESP array of bulk strings, or None at end of file."""
    line = await reader.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return [line.strip()]  # inline command (redis-cli style)
    n = int(line[1:].strip())
    args = []
    for _ in range(n):
        header = await reader.readline()
        length = int(header[1:].strip())
        data = await reader.readexactly(length + 2)
        args.append(data[:-2])
    return args


def handler(scenario):
    async def serve(reader, writer):
        try:
            while True:
                args = await read_command(reader)
                if args is None:
                    break
                if scenario == "silent":
                    continue
                name = args[0].upper() if args else b""
                if name == b"PING":
                    writer.write(b"+PONG\r\n")
                elif name == b"QUIT":
                    writer.write(b"+OK\r\n")
                    await writer.drain()
                    break
                elif name in (b"AUTH", b"SELECT", b"SET"):
                    writer.write(b"+OK\r\n")
                elif name == b"GET" and scenario == "malformed":
                    writer.write(b"?garbage\r\n")
                elif name == b"GET" and scenario == "oversized":
                    writer.write(b"$1000000000\r\nabc")
                elif name == b"GET":
                    writer.write(b"$5\r\nvalue\r\n")
                else:
                    writer.write(b"-ERR unknown command\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    return serve


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True, choices=["normal", "malformed", "oversized", "silent"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    server = await asyncio.start_server(handler(args.scenario), args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()

    async def watch_parent():
        while os.getppid() == parent:
            await asyncio.sleep(1)
        stop.set()

    watcher = asyncio.create_task(watch_parent())
    await stop.wait()
    watcher.cancel()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
