"""Step 6, the library: netsuite's client library downloads, resuming and verifying."""

import os
import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import clientFromString

from suite.files.client import RemoteError, TransferError, download


async def main(reactor, port: str, name: str, destination: str) -> None:
    endpoint = clientFromString(reactor, f"tcp:host=127.0.0.1:port={port}:timeout=5")
    first: list[int] = []

    def progress(done: int, total: int) -> None:
        if not first:
            first.append(done)
            print(f"starting at {done} of {total} bytes", flush=True)

    try:
        stored = await download(endpoint, name, destination, progress=progress)
    except error.ConnectionRefusedError:
        raise SystemExit(f"nobody is listening on 127.0.0.1:{port}")
    except RemoteError as e:  # the server said ERR: e.code is "not-found"...
        raise SystemExit(f"server refused: {e}")
    except TransferError as e:  # the destination exists, cut off, or did not verify
        raise SystemExit(f"download failed: {e}")
    print(f"saved {destination}: {stored.size} bytes, sha256 {stored.sha256}")


if len(sys.argv) != 4 or not sys.argv[1].isdigit():
    sys.exit("usage: python twisted_download.py PORT NAME DESTINATION")
if os.path.exists(sys.argv[3]):
    sys.exit(f"{sys.argv[3]} exists: remove it to download again")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
