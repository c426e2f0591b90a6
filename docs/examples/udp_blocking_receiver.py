"""Step 1, the blocking way: receive COUNT datagrams on PORT, one recvfrom() at a time."""

import signal
import socket
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, without a traceback

if len(sys.argv) > 3 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python udp_blocking_receiver.py [PORT] [COUNT]   (PORT 0: any free port)")
port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    sock.bind(("127.0.0.1", port))
except OSError as e:  # errno EADDRINUSE: another program has this UDP port
    sys.exit(f"cannot listen on 127.0.0.1:{port}: {e.strerror}")
print("listening on", sock.getsockname()[1], flush=True)
for _ in range(count):
    data, (host, peer) = sock.recvfrom(65535)  # blocks: nothing else can happen meanwhile
    print(f"from {host}:{peer}: {data.decode(errors='replace')}", flush=True)
sock.close()
