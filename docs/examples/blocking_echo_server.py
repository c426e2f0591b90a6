"""Step 3, the blocking way: one client at a time. The next one waits in the backlog."""

import signal
import socket
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, without a traceback

if len(sys.argv) > 3 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python blocking_echo_server.py [PORT] [CLIENTS]   (PORT 0: any free port)")
port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 2
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # re-runnable at once on the same port
try:
    server.bind(("127.0.0.1", port))
except OSError as e:
    sys.exit(f"cannot listen on 127.0.0.1:{port}: {e.strerror}")
server.listen()
print("listening on", server.getsockname()[1], flush=True)
for number in range(1, clients + 1):
    conn, (host, peer) = server.accept()
    print(f"serving client {number} ({host}:{peer})", flush=True)
    while True:
        data = conn.recv(1024)  # while we wait here, every other client waits too
        if not data:
            break
        conn.sendall(data)
    conn.close()
server.close()
