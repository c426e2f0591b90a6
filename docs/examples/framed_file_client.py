"""Step 5, fixed: send "PUT SIZE NAME", wait for READY, send the bytes, check the verdict."""

import hashlib
import os
import socket
import sys


def answer(stream) -> str:
    """The server's next reply line, skipping a greeting ("NETSUITE-FILES 1")."""
    while line := stream.readline(4096).decode(errors="replace").rstrip("\r\n"):
        if line.split(" ")[0] in ("READY", "STORED", "ERR"):
            return line
    return "ERR closed the connection without a reply"


if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python framed_file_client.py PORT FILE")
port, path = int(sys.argv[1]), sys.argv[2]
try:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)  # every wait below: at most 10 s
    replies = sock.makefile("rb")
    with open(path, "rb") as f:
        sock.sendall(f"PUT {os.path.getsize(path)} {os.path.basename(path)}\n".encode())
        if not (reply := answer(replies)).startswith("READY "):
            sys.exit(f"server refused: {reply}")  # e.g. "ERR exists ..." when run twice
        sock.sendfile(f)  # streamed by the kernel, never all in memory
        sock.shutdown(socket.SHUT_WR)  # half-close: "that was all", and we can still read
        reply = answer(replies)
        f.seek(0)
        digest = hashlib.file_digest(f, "sha256").hexdigest()
except TimeoutError:
    sys.exit("no reply within 10 s")
except OSError as e:  # refused, no such file, reset...
    sys.exit(f"cannot upload {path}: {e.strerror}")
if not reply.startswith("STORED "):
    sys.exit(f"not stored: {reply}")
_, size, sha256, name = reply.split(" ", 3)
if sha256 != digest:
    sys.exit(f"not stored intact: the server got sha256 {sha256}, the file has {digest}")
print(f"stored {name}: {size} bytes, sha256 {sha256}")
