"""Step 2, the blocking way: accept one client, answer one request, exit."""

import socket

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
server.listen()
print("listening on", server.getsockname()[1], flush=True)
conn, addr = server.accept()  # blocks until a client connects
request = conn.recv(1024)  # blocks; and may return only part of what was sent
conn.sendall(b"hello, " + request)
conn.close()
server.close()
