"""Why blocking clients hang: send a line WITH its delimiter, read until the delimiter, never forever."""

import socket
import sys


def read_line(sock: socket.socket, pending: bytearray) -> bytes:
    """One line: recv() returns any piece of the stream, so gather pieces up to the newline."""
    while b"\n" not in pending:
        piece = sock.recv(4096)  # maybe half a line (拆包), maybe two lines (粘包)
        if not piece:
            raise EOFError(bytes(pending))
        pending += piece
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest  # keep what belongs to the next line
    return line


if len(sys.argv) not in (3, 4) or not sys.argv[1].isdigit():
    sys.exit("usage: python blocking_line_client.py PORT MESSAGE [TIMEOUT]   (talks to an echo server)")
port, message = int(sys.argv[1]), sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
try:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)  # connect AND every recv
    sock.sendall(message.encode() + b"\n")  # without "\n" a line server waits for the rest, forever
    echo = read_line(sock, bytearray())
except ConnectionRefusedError:
    sys.exit(f"nobody is listening on 127.0.0.1:{port}")
except TimeoutError:
    sys.exit(f"no complete line within {timeout:g} s: is it a line server? did it get the newline?")
except EOFError as e:
    sys.exit(f"the server closed the connection; it sent {e.args[0]!r} and no newline")
sock.close()
if echo.rstrip(b"\r") != message.encode():
    sys.exit(f"not an echo: sent {message!r}, got {echo!r}")
print(echo.decode(errors="replace"))
