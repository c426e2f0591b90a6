"""Step 5, the event-driven way: netsuite's client library uploads to its file service."""

import sys

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString

from suite.files.client import upload


async def main(reactor, port: str, path: str) -> None:
    endpoint = clientFromString(reactor, f"tcp:host=127.0.0.1:port={port}")

    def progress(done: int, total: int) -> None:
        print(f"{done}/{total} bytes", flush=True)

    stored = await upload(endpoint, path, progress=progress)  # streamed, resumable, verified
    print(f"stored {stored.name}: sha256 {stored.sha256}")


task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
