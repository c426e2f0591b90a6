"""Step 6, the blocking way: download NAME with "GET OFFSET NAME", resuming a cut-off download."""

import hashlib
import os
import socket
import sys


def answer(stream) -> str:
    """The server's next reply line, skipping its greeting ("NETSUITE-FILES 1")."""
    while line := stream.readline(4096).decode(errors="replace").rstrip("\r\n"):
        if line.split(" ")[0] in ("DATA", "ERR"):
            return line
    return "ERR closed the connection without a reply"


if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python blocking_download.py PORT NAME   (saves ./NAME)")
port, name = int(sys.argv[1]), sys.argv[2]
target = os.path.basename(name)  # never write outside the current directory
part = target + ".part"  # what an earlier, cut-off run left
if os.path.exists(target):
    sys.exit(f"{target} exists: remove it to download again")
offset = os.path.getsize(part) if os.path.exists(part) else 0  # resume from there
try:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    stream = sock.makefile("rb")
    sock.sendall(f"GET {offset} {name}\n".encode())
    reply = answer(stream)
    if not reply.startswith("DATA "):
        sys.exit(f"server refused: {reply}")  # e.g. "ERR not-found ..."
    _, size, sha256, _ = reply.split(" ")
    left = int(size) - offset
    with open(part, "ab") as out:  # append: the old bytes stay
        while left:
            chunk = stream.read1(min(65536, left))  # exactly what DATA announced, no more
            if not chunk:
                sys.exit(f"cut off with {left} bytes to go: run again to resume")
            out.write(chunk)
            left -= len(chunk)
    sock.sendall(b"QUIT\n")
    sock.close()
except TimeoutError:
    sys.exit("no data within 10 s: run again to resume")
except OSError as e:  # refused, reset...
    sys.exit(f"cannot download {name}: {e.strerror}")
with open(part, "rb") as f:
    if hashlib.file_digest(f, "sha256").hexdigest() != sha256:  # old and new bytes, checked together
        os.remove(part)  # the old part was of another version of the file
        sys.exit(f"{name} did not verify (sha256); the partial file is removed, run again")
os.rename(part, target)
print(f"saved {target}: {size} bytes (resumed at {offset}), sha256 {sha256}")
