"""Step 5, fixed: a header line says the name and the size; then exactly that many bytes."""

import hashlib
import socket

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
server.listen()
print("listening on", server.getsockname()[1], flush=True)
conn, _ = server.accept()
stream = conn.makefile("rb")
size, name = stream.readline().decode().rstrip("\n").split(" ", 1)  # framing: read to the newline
left, digest = int(size), hashlib.sha256()
while left:
    chunk = stream.read(min(65536, left))  # never more than the header promised
    if not chunk:
        raise SystemExit(f"short upload: {left} bytes missing")
    digest.update(chunk)
    left -= len(chunk)
print(f"{name}: {size} bytes, sha256 {digest.hexdigest()}", flush=True)
conn.close()
