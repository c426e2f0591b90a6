"""
Chat load generator: N clients in one room, S of them sending.

``--protocol irc`` and ``--protocol websocket`` speak to netsuite's IRC and
WebSocket fronts instead of a line chat (registering, joining #lobby, or
upgrading to WebSocket first); delivered lines are counted the same way.

Prints one JSON object: lines delivered to the non-sending clients per
second (throughput mode: senders write as fast as TCP lets them), or the
delivery latency percentiles (``--rate``: senders write at a fixed total
rate).  Works against any server that relays each line to every client,
so the same run can measure netsuite and a baseline.  Loopback only; every
run ends by itself after ``--warmup + --duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import statistics
import sys
import time

MARK = b"BENCH"


class StampingReader(asyncio.StreamReader):
    """
    A stream reader that, once given a ``sink``, hands each chunk to it the
    moment the event loop reads it from the socket (with the time then),
    instead of buffering it for a task to pick up later in the loop's turn:
    a latency measured this way does not include the time this process
    takes to get round to the reading task.
    """

    sink = None

    def feed_data(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink(data, time.monotonic_ns())
        else:
            super().feed_data(data)


async def connect(port: int, stamping: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` to 127.0.0.1, with a :class:`StampingReader` if ``stamping``."""
    if not stamping:
        return await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    loop = asyncio.get_running_loop()
    reader = StampingReader(limit=1 << 20, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, "127.0.0.1", port)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class Front:
    """How to join and talk: the line chat (each line as is)."""

    async def setup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int) -> None:
        pass

    def line(self, text: bytes) -> bytes:
        return text + b"\r\n"


class IRCFront(Front):
    """IRC: register, join #lobby (wait for the end of NAMES), PRIVMSG the channel."""

    async def setup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int) -> None:
        writer.write(b"NICK bench%d\r\nUSER bench 0 * :bench\r\nJOIN #lobby\r\n" % i)
        seen = b""
        while b" 366 " not in seen:
            data = await reader.read(65536)
            if not data:
                raise SystemExit(f"IRC server closed a connection during set-up: {seen[-300:]!r}")
            seen = seen[-4096:] + data

    def line(self, text: bytes) -> bytes:
        return b"PRIVMSG #lobby :" + text + b"\r\n"


class WebSocketFront(Front):
    """WebSocket: the upgrade and the masked client frames by wsproto; JSON ``say`` messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.framer = None  # an accepted client connection: it frames (and masks) messages

    async def setup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request

        conn = WSConnection(ConnectionType.CLIENT)
        writer.write(conn.send(Request(host="127.0.0.1", target=self.path)))
        while True:
            data = await reader.read(65536)
            if not data:
                raise SystemExit("WebSocket server closed a connection during set-up")
            conn.receive_data(data)
            if any(isinstance(e, AcceptConnection) for e in conn.events()):
                break
        self.framer = conn

    def line(self, text: bytes) -> bytes:
        from wsproto.events import TextMessage

        return self.framer.send(TextMessage(json.dumps({"type": "say", "text": text.decode()})))


async def main(args: argparse.Namespace) -> dict:
    loop = asyncio.get_running_loop()
    front = {"line": Front, "irc": IRCFront, "websocket": lambda: WebSocketFront(args.path)}[args.protocol]()
    clients = []
    for i in range(args.clients):
        # Several ports (chat nodes): clients, senders too, dealt round-robin.
        port = args.port[i % len(args.port)]
        reader, writer = await connect(port, args.stamp_on_arrival)
        await front.setup(reader, writer, i)
        clients.append((reader, writer))
    senders = clients[: args.senders]
    receivers = clients[args.senders :]

    # Barrier: a line every client must see before the run starts, so every
    # client is registered with the server.
    async def wait_for(reader: asyncio.StreamReader, token: bytes) -> None:
        seen = b""
        while token not in seen:
            seen = seen[-len(token) :] + await reader.read(65536)
            if not seen:
                raise SystemExit("server closed a connection during set-up")

    async def announce() -> None:
        # Repeated: a client the server has not accepted yet misses a line.
        while True:
            senders[0][1].write(front.line(b"SYNC-ALL"))
            await asyncio.sleep(0.2)

    announcing = loop.create_task(announce())
    # IRC does not echo a sender's own line: the first sender waits for nothing.
    waiting = clients[1:] if args.protocol == "irc" else clients
    await asyncio.wait_for(asyncio.gather(*(wait_for(r, b"SYNC-ALL") for r, _ in waiting)), 30)
    announcing.cancel()

    counting = False
    counts = [0] * len(receivers)
    latencies: list[float] = []
    #: With several ports: latencies of lines from a sender on the same server, and on another.
    same: list[float] = []
    cross: list[float] = []
    stop = False
    ports = len(args.port)

    def record(i: int, lines: list[bytes], now: int) -> None:
        for line in lines:
            at = line.find(MARK)
            if at >= 0 and counting:
                sent = int(line[at + 6 : at + 25])
                latency = (now - sent) / 1e6
                latencies.append(latency)
                counts[i] += 1
                if ports > 1:
                    sender = int(line[at + 26 : at + 28])
                    (same if sender % ports == (args.senders + i) % ports else cross).append(latency)

    async def receive(i: int, reader: asyncio.StreamReader) -> None:
        tail = b""
        if args.rate and args.stamp_on_arrival:
            state = [b""]

            def sink(data: bytes, now: int) -> None:
                *lines, state[0] = (state[0] + data).split(b"\n")
                record(i, lines, now)

            reader.sink = sink
            while not stop:
                await asyncio.sleep(0.1)
            return
        while not stop:
            data = await reader.read(1 << 18)
            if not data:
                return
            if args.rate:
                data = tail + data
                *lines, tail = data.split(b"\n")
                record(i, lines, time.monotonic_ns())
            elif counting:
                counts[i] += data.count(MARK)

    pad = b"x" * max(0, args.line_size - 29)

    async def send(number: int, writer: asyncio.StreamWriter) -> None:
        if args.rate:
            interval = args.senders / args.rate
            next_at = time.monotonic()
            while not stop:
                # The time sent, and which sender (so a receiver knows whether it was on its own server).
                writer.write(front.line(MARK + b" %019d %02d " % (time.monotonic_ns(), number % 100) + pad))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        else:
            burst = b"".join(front.line(MARK + b" %019d %02d " % (0, 0) + pad) for _ in range(64))
            while not stop:
                writer.write(burst)
                await writer.drain()
                # drain() does not yield while the socket takes everything:
                # without this, one sender could starve every other task.
                await asyncio.sleep(0)

    tasks = [loop.create_task(receive(i, r)) for i, (r, _) in enumerate(receivers)]
    tasks += [loop.create_task(send(n, w)) for n, (_, w) in enumerate(senders)]
    # Senders also read (the server may echo to them): drain and discard,
    # so they never stall the server.
    drains = [loop.create_task(_discard(r, lambda: stop)) for r, _ in senders]

    await asyncio.sleep(args.warmup)
    counting = True
    started = time.monotonic()
    cpu_before = _own_cpu()
    await asyncio.sleep(args.duration)
    counting = False
    elapsed = time.monotonic() - started
    own_cpu = _own_cpu() - cpu_before
    stop = True
    for _, w in clients:
        w.transport.abort()
    for task in tasks + drains:
        task.cancel()
    await asyncio.gather(*tasks, *drains, return_exceptions=True)

    delivered = sum(counts)
    result = {
        "clients": args.clients,
        "senders": args.senders,
        "delivered": delivered,
        "seconds": round(elapsed, 3),
        "lines_per_s": round(delivered / elapsed, 1),
        # This process's share of one core while measuring: near 100 % means
        # the load generator, not the server, set the pace (and the latency).
        "loadgen_cpu": round(own_cpu / elapsed, 3),
    }
    if args.rate and latencies:
        latencies.sort()
        result["p50_ms"] = round(statistics.median(latencies), 3)
        result["p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1], 3)
        result["rate"] = args.rate
        for name, values in (("same", same), ("cross", cross)):
            if values:
                values.sort()
                result[f"p50_{name}_ms"] = round(statistics.median(values), 3)
                result[f"p99_{name}_ms"] = round(values[int(len(values) * 0.99) - 1], 3)
    return result


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _discard(reader: asyncio.StreamReader, stopped) -> None:
    while not stopped():
        if not await reader.read(1 << 18):
            return


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, action="append",
                        help="server port; repeat to split the clients across several servers")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--line-size", type=int, default=64)
    parser.add_argument("--protocol", choices=("line", "irc", "websocket"), default="line")
    parser.add_argument("--path", default="/chat", help="the WebSocket's path (--protocol websocket)")
    parser.add_argument("--stamp-on-arrival", action="store_true",
                        help="latency mode: time each chunk as the event loop reads it from the socket, "
                             "not when a task gets round to it (line chat only)")
    parser.add_argument("--rate", type=float, default=0.0, help="total lines/s (latency mode); 0: as fast as possible")
    return parser.parse_args(argv)


if __name__ == "__main__":
    # No cycles are made here; the collector's pauses would only add noise
    # to the latency tail.
    gc.disable()
    print(json.dumps(asyncio.run(main(parse_args()))))
    sys.stdout.flush()
