"""
Baseline: "receive a file" in stdlib asyncio: write each received chunk to
a new file, fsync and answer at the end.  Usage: python asyncio_sink.py DIR
"""

import asyncio
import itertools
import os
import sys

counter = itertools.count()


class Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.file = open(os.path.join(sys.argv[1], f"upload-{os.getpid()}-{next(counter)}"), "xb")

    def data_received(self, data):
        self.file.write(data)

    def eof_received(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.transport.write(b"OK\n")
        self.transport.close()
        return True


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", 0)
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Future()


asyncio.run(main())
