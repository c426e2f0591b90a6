"""
HTTP file-transfer load: one PUT or one GET of a whole file over loopback,
timed from connect to the server's last byte.  Prints JSON.

  webload.py upload PORT FILE PATH     PUT FILE to PATH (sendfile from the client)
  webload.py download PORT SIZE PATH   GET PATH, reading SIZE body bytes
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

BLOCK = 1 << 20


def _head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response head and whatever body bytes came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"server closed; got {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def upload(port: int, path: str, target: str) -> dict:
    size = os.path.getsize(path)
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n"
                 "Connection: close\r\n\r\n".encode())
    with open(path, "rb") as f:
        sock.sendfile(f)
    head, _ = _head(sock)
    elapsed = time.perf_counter() - started
    sock.close()
    if not head.split(b"\r\n")[0].split()[1] in (b"201", b"204"):
        raise SystemExit(f"upload failed: {head!r}")
    return {"bytes": size, "seconds": round(elapsed, 3), "mb_per_s": round(size / elapsed / 1e6, 1)}


def download(port: int, size: int, target: str) -> dict:
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    head, rest = _head(sock)
    if head.split(b"\r\n")[0].split()[1] != b"200":
        raise SystemExit(f"download failed: {head!r}")
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    got = len(rest)
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
    parser.add_argument("path", help="the URL path")
    args = parser.parse_args()
    if args.direction == "upload":
        result = upload(args.port, args.what, args.path)
    else:
        result = download(args.port, int(args.what), args.path)
    print(json.dumps(result))
