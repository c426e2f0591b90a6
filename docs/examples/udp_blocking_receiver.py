"""Step 1, the blocking way: receive COUNT datagrams, one recvfrom() at a time."""

import socket
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
print("listening on", sock.getsockname()[1], flush=True)
for _ in range(count):
    data, (host, port) = sock.recvfrom(65535)  # blocks: nothing else can happen meanwhile
    print(f"from {host}:{port}: {data.decode()}", flush=True)
sock.close()
