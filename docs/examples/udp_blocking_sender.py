"""Step 1, the blocking way: send one datagram to 127.0.0.1:PORT."""

import socket
import sys

if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python udp_blocking_sender.py PORT MESSAGE")
port, message = int(sys.argv[1]), sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.sendto(message.encode(), ("127.0.0.1", port))  # no connection, no reply, no guarantee
sock.close()
