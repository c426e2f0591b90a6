"""Step 5, the naive way: send the name, then the file, as two sends."""

import socket
import sys

if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python naive_file_client.py PORT FILE")
port, path = int(sys.argv[1]), sys.argv[2]
try:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(path.encode())  # two sendall() calls are not two messages:
    with open(path, "rb") as f:
        sock.sendall(f.read())  # the receiver sees one stream of bytes (and this reads it all into memory)
except OSError as e:  # refused, no such file, reset...
    sys.exit(f"cannot send {path}: {e.strerror}")
sock.close()  # and never asks whether anything was stored
