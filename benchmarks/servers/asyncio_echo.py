"""
Baselines: the same echo servers in stdlib asyncio (uvloop when installed
and asked for with --uvloop).  Usage: python asyncio_echo.py tcp|udp [--uvloop]
"""

import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoUDP(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def main(kind: str) -> None:
    loop = asyncio.get_running_loop()
    if kind == "tcp":
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
    else:
        transport, _ = await loop.create_datagram_endpoint(EchoUDP, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
    print(f"listening on {port}", flush=True)
    await asyncio.Future()


if "--uvloop" in sys.argv:
    import uvloop

    uvloop.install()
asyncio.run(main(sys.argv[1]))
