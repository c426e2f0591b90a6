"""Step 5, the naive way: a name, then the data. TCP does not keep them apart."""

import signal
import socket
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, without a traceback

if len(sys.argv) > 2 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python naive_file_server.py [PORT]   (PORT 0: any free port)")
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
name = conn.recv(1024)  # meant: the name. Got: whatever arrived, name and data together
data = b""
while chunk := conn.recv(1024):
    data += chunk
print(f"name field: {len(name)} bytes, data: {len(data)} bytes", flush=True)
conn.close()
