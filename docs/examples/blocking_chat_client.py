"""Step 4, the blocking way: type a line, then read. Messages from others wait for your turn."""

import socket
import sys

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for line in sys.stdin:  # input() blocks: nothing is printed while you think
    sock.sendall(line.encode())
    print(sock.recv(4096).decode(), end="", flush=True)  # whatever came, maybe not yours
sock.close()
