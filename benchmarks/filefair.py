"""
Fairness load: echo round trips timed one by one, and a hostile client
that pipelines file-service commands without ever reading a reply.
Prints JSON.

  filefair.py echo PORT COUNT        COUNT sequential 64-byte round trips: p50/p99/max in ms
  filefair.py hostile PORT SECONDS   pipeline STAT/GET/LIST of missing names on 4 connections, never read
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import time


def echo(port: int, count: int) -> dict:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = b"x" * 63 + b"\n"
    times = []
    for _ in range(count):
        started = time.perf_counter()
        sock.sendall(message)
        got = 0
        while got < len(message):
            chunk = sock.recv(4096)
            if not chunk:
                raise SystemExit("echo server closed")
            got += len(chunk)
        times.append((time.perf_counter() - started) * 1000)
    sock.close()
    times.sort()
    return {
        "count": count,
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        "max_ms": round(times[-1], 3),
    }


def hostile(port: int, seconds: float) -> dict:
    batch = (b"STAT missing file\n" + b"GET 0 missing file\n" + b"LIST\n" + b"NOOP\n") * 4096
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    for sock in socks:
        sock.settimeout(0.05)
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for sock in socks:
            try:
                sent += sock.send(batch)
            except (TimeoutError, BlockingIOError):
                pass  # the server stopped reading: it is pushing back
            except OSError:
                pass  # the server cut this one off (it reads nothing)
    for sock in socks:
        sock.close()
    return {"bytes_sent": sent}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["echo", "hostile"])
    parser.add_argument("port", type=int)
    parser.add_argument("amount", type=float, help="COUNT round trips, or SECONDS of hostility")
    args = parser.parse_args()
    result = echo(args.port, int(args.amount)) if args.role == "echo" else hostile(args.port, args.amount)
    print(json.dumps(result))
