"""Step 5, the library: netsuite's client library uploads to its file service."""

import os
import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import clientFromString

from suite.files.client import RemoteError, TransferError, upload


async def main(reactor, port: str, path: str) -> None:
    endpoint = clientFromString(reactor, f"tcp:host=127.0.0.1:port={port}:timeout=5")

    def progress(done: int, total: int) -> None:
        print(f"{done}/{total} bytes", flush=True)

    try:
        stored = await upload(endpoint, path, progress=progress)  # streamed, resumable, verified
    except error.ConnectionRefusedError:
        raise SystemExit(f"nobody is listening on 127.0.0.1:{port}")
    except RemoteError as e:  # the server said ERR: e.code is "exists", "too-large"...
        raise SystemExit(f"server refused: {e}")
    except TransferError as e:  # cut off, or the digest did not match
        raise SystemExit(f"upload failed: {e}")
    print(f"stored {stored.name}: sha256 {stored.sha256}")


if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python twisted_upload.py PORT FILE")
if not os.path.isfile(sys.argv[2]):
    sys.exit(f"no such file: {sys.argv[2]}")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
