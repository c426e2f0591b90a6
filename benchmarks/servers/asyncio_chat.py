"""
Baseline: the Twisted documentation's chat server, written for stdlib
asyncio (uvloop with --uvloop): every line goes to every client.
Usage: python asyncio_chat.py [--uvloop]
"""

import asyncio
import sys

clients: list["Chat"] = []


class Chat(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        clients.append(self)

    def connection_lost(self, exc):
        clients.remove(self)

    def data_received(self, data):
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            message = line.rstrip(b"\r") + b"\n"
            for client in clients:
                client.transport.write(message)


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Chat, "127.0.0.1", 0, backlog=1024)
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Future()


if "--uvloop" in sys.argv:
    import uvloop

    uvloop.install()
asyncio.run(main())
