"""Step 2, the blocking way: connect, send, read the answer."""

import socket
import sys

if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python tcp_blocking_client.py PORT MESSAGE")
try:
    sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
except ConnectionRefusedError:
    sys.exit(f"nobody is listening on 127.0.0.1:{sys.argv[1]}")
sock.sendall(sys.argv[2].encode())
print(sock.recv(1024).decode(errors="replace"))  # one recv() is not "the whole answer" in general
sock.close()
