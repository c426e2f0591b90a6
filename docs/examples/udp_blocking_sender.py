"""Step 1, the blocking way: send one datagram to 127.0.0.1:PORT."""

import socket
import sys

port, message = int(sys.argv[1]), sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.sendto(message.encode(), ("127.0.0.1", port))  # no connection, no reply, no guarantee
sock.close()
