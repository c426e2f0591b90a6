"""Step 2, the blocking way: accept one client on PORT, answer one request, exit."""

import signal
import socket
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, without a traceback

if len(sys.argv) > 2 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python tcp_blocking_server.py [PORT]   (PORT 0: any free port)")
port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Without this, re-running at once on the same port fails for a minute or two:
# the last connection's TIME_WAIT still holds the address.
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    server.bind(("127.0.0.1", port))
except OSError as e:  # errno EADDRINUSE: another server still listens there
    sys.exit(f"cannot listen on 127.0.0.1:{port}: {e.strerror}")
server.listen()
print("listening on", server.getsockname()[1], flush=True)
conn, addr = server.accept()  # blocks until a client connects
request = conn.recv(1024)  # blocks; and may return only part of what was sent
conn.sendall(b"hello, " + request)
conn.close()
server.close()
