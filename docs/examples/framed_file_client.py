"""Step 5, fixed: send "SIZE NAME\\n", then the bytes, a block at a time."""

import os
import socket
import sys

port, path = int(sys.argv[1]), sys.argv[2]
sock = socket.create_connection(("127.0.0.1", port))
sock.sendall(f"{os.path.getsize(path)} {os.path.basename(path)}\n".encode())
with open(path, "rb") as f:
    sock.sendfile(f)  # streamed by the kernel, never all in memory
sock.close()
