"""Step 2, the blocking way: connect, send, read the answer."""

import socket
import sys

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(sys.argv[2].encode())
print(sock.recv(1024).decode())  # one recv() is not "the whole answer" in general
sock.close()
