"""Step 5, the naive way: send the name, then the file, as two sends."""

import socket
import sys

port, path = int(sys.argv[1]), sys.argv[2]
sock = socket.create_connection(("127.0.0.1", port))
sock.sendall(path.encode())  # two sendall() calls are not two messages:
with open(path, "rb") as f:
    sock.sendall(f.read())  # the receiver sees one stream of bytes (and this reads it all into memory)
sock.close()
