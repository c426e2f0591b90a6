"""Step 3, the blocking way: one client at a time. The next one waits in the backlog."""

import socket
import sys

clients = int(sys.argv[1]) if len(sys.argv) > 1 else 2
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
server.listen()
print("listening on", server.getsockname()[1], flush=True)
for number in range(1, clients + 1):
    conn, (host, port) = server.accept()
    print(f"serving client {number} ({host}:{port})", flush=True)
    while True:
        data = conn.recv(1024)  # while we wait here, every other client waits too
        if not data:
            break
        conn.sendall(data)
    conn.close()
server.close()
