"""Step 5, the naive way: a name, then the data. TCP does not keep them apart."""

import socket

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
server.listen()
print("listening on", server.getsockname()[1], flush=True)
conn, _ = server.accept()
name = conn.recv(1024)  # meant: the name. Got: whatever arrived, name and data together
data = b""
while chunk := conn.recv(1024):
    data += chunk
print(f"name field: {len(name)} bytes, data: {len(data)} bytes", flush=True)
conn.close()
