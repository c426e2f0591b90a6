"""Step 5, fixed: a header line "PUT SIZE NAME", a go-ahead, exactly SIZE bytes, a verdict."""

import hashlib
import os
import signal
import socket
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, without a traceback

if len(sys.argv) > 2 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python framed_file_server.py [PORT]   (PORT 0: any free port; stores in .)")
port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    server.bind(("127.0.0.1", port))
except OSError as e:
    sys.exit(f"cannot listen on 127.0.0.1:{port}: {e.strerror}")
server.listen()
print("listening on", server.getsockname()[1], flush=True)
conn, _ = server.accept()
stream = conn.makefile("rb")
header = stream.readline(4096).decode(errors="replace").rstrip("\r\n").split(" ", 2)  # framing: to the newline


def refuse(reply: str) -> None:
    conn.sendall(f"ERR {reply}\n".encode())  # say why, never stay silent
    sys.exit(f"refused: {reply}")


if len(header) != 3 or header[0] != "PUT" or not header[1].isdigit():
    refuse("bad-command expected: PUT SIZE NAME")
_, size, name = header
if name != os.path.basename(name) or name.startswith("."):
    refuse(f"bad-name {name!r}")  # "../../.bashrc" must not leave this directory
try:
    out = open(name, "xb")  # "x": never replace an existing file
except FileExistsError:
    refuse(f"exists {name}")
conn.sendall(b"READY 0\n")  # the client waits for this before sending the bytes
left, digest = int(size), hashlib.sha256()
with out:
    while left:
        chunk = stream.read1(min(65536, left))  # never more than the header promised
        if not chunk:
            os.remove(name)  # a short file is no file
            refuse(f"short {left} bytes missing")
        out.write(chunk)
        digest.update(chunk)
        left -= len(chunk)
conn.sendall(f"STORED {size} {digest.hexdigest()} {name}\n".encode())
print(f"{name}: {size} bytes, sha256 {digest.hexdigest()}", flush=True)
conn.close()
