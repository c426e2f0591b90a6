"""Step 4, the blocking way: type a line, then read. Messages from others wait for your turn."""

import signal
import socket
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once, without a traceback

if len(sys.argv) != 2 or not sys.argv[1].isdigit():
    sys.exit("usage: python blocking_chat_client.py PORT")
try:
    sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
except ConnectionRefusedError:
    sys.exit(f"nobody is listening on 127.0.0.1:{sys.argv[1]}")
for line in sys.stdin:  # like input(), blocks: nothing is printed while you think
    sock.sendall(line.encode())  # the line keeps its "\n": the server waits for it
    print(sock.recv(4096).decode(errors="replace"), end="", flush=True)  # whatever came, maybe not yours
sock.close()
