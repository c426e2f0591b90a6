"""
Idle connections: open COUNT connections to 127.0.0.1:PORT and hold them.

With --chat-rooms R, each connection sends "/join rK" (K = index % R) at
once, so a netsuite chat's lobby never holds many users.  Prints "ready"
once every connection is open (and its join sent), then holds them until
standard input closes or --hold seconds pass.
"""

import argparse
import select
import socket
import sys

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("count", type=int)
parser.add_argument("--chat-rooms", type=int, default=0)
parser.add_argument("--hold", type=float, default=120.0)
args = parser.parse_args()

sockets = []
for index in range(args.count):
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=30)
    if args.chat_rooms:
        sock.sendall(f"/join r{index % args.chat_rooms}\n".encode())
    sock.setblocking(False)
    sockets.append(sock)
    if index % 500 == 499:  # drain what servers said (welcome lines), so nothing backs up
        for s in sockets[-500:]:
            try:
                while s.recv(65536):
                    pass
            except BlockingIOError:
                pass
print("ready", flush=True)
select.select([sys.stdin], [], [], args.hold)
for sock in sockets:
    sock.close()
