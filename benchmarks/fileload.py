"""
File-transfer load: one upload or one download of a whole file over
loopback, timed from connect to the server's last word.  Prints JSON.

  fileload.py upload PORT FILE [--netsuite NAME]    send FILE (PUT header with --netsuite)
  fileload.py download PORT SIZE [--netsuite NAME]  read SIZE bytes (GET header with --netsuite)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

BLOCK = 1 << 20


def read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            raise SystemExit(f"server closed; got {line!r}")
        line += byte
    return line


def upload(port: int, path: str, name: str | None) -> dict:
    size = os.path.getsize(path)
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port))
    if name:
        read_line(sock)  # greeting
        sock.sendall(f"PUT {size} {name}\n".encode())
    with open(path, "rb") as f:
        sock.sendfile(f)
    sock.shutdown(socket.SHUT_WR)
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    elapsed = time.perf_counter() - started
    if not (b"STORED" in reply or reply.startswith(b"OK")):
        raise SystemExit(f"upload failed: {reply!r}")
    return {"bytes": size, "seconds": round(elapsed, 3), "mb_per_s": round(size / elapsed / 1e6, 1)}


def download(port: int, size: int, name: str | None) -> dict:
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port))
    if name:
        read_line(sock)
        sock.sendall(f"GET 0 {name}\n".encode())
        header = read_line(sock)
        if not header.startswith(b"DATA "):
            raise SystemExit(f"download failed: {header!r}")
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view)
        if not n:
            break
        got += n
    elapsed = time.perf_counter() - started
    sock.close()
    if got != size:
        raise SystemExit(f"download short: {got} of {size}")
    return {"bytes": size, "seconds": round(elapsed, 3), "mb_per_s": round(size / elapsed / 1e6, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("direction", choices=["upload", "download"])
    parser.add_argument("port", type=int)
    parser.add_argument("what", help="FILE to upload, or SIZE to download")
    parser.add_argument("--netsuite", metavar="NAME", help="speak the netsuite file protocol for NAME")
    args = parser.parse_args()
    if args.direction == "upload":
        result = upload(args.port, args.what, args.netsuite)
    else:
        result = download(args.port, int(args.what), args.netsuite)
    print(json.dumps(result))
