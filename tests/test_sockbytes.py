"""suite.sockbytes: byte counts from the kernel, for open connections and at close, on real sockets."""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.testing import StringTransport

from suite.echo import EchoFactory
from suite.sockbytes import SocketBytes, tcp_bytes
from tests.helpers import connect_collector, stop_tracked, track

pytestmark = pytest.mark.skipif(getattr(socket, "TCP_INFO", None) is None, reason="needs Linux TCP_INFO")


def test_tcp_bytes_of_a_socket_pair_and_a_closed_socket() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    with listener, client, server:
        client.sendall(b"x" * 1000)
        received = b""
        while len(received) < 1000:
            received += server.recv(4096)
        server.sendall(b"y" * 5000)
        assert tcp_bytes(server) == (1000, 5000)
        client.shutdown(socket.SHUT_WR)  # the FIN is not a byte of data
        assert server.recv(10) == b""
        assert tcp_bytes(server) == (1000, 5000)
        server.close()
        assert tcp_bytes(server) is None


def test_transports_without_a_tcp_socket_are_not_counted() -> None:
    sockets = SocketBytes(received=False)
    sockets.watch(StringTransport())
    assert sockets.live == {}
    assert sockets.bytes_in is None and sockets.bytes_out == 0


@pytest_twisted.ensureDeferred
async def test_echo_counts_open_and_closed_connections() -> None:
    factory = track(EchoFactory(reactor=reactor))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        client = await connect_collector(port.getHost().port)
        client.transport.write(b"a" * 100_000)
        await client.wait_for(100_000)
        # Open: read from the live socket.
        assert (factory.sockets.bytes_in, factory.sockets.bytes_out) == (100_000, 100_000)
        client.transport.loseWriteConnection()  # half-close: the server flushes and closes
        await client.lost
        await factory.closed.get()
        assert factory.sockets.live == {}
        assert (factory.sockets.bytes_in, factory.sockets.bytes_out) == (100_000, 100_000)
    finally:
        await stop_tracked(factory, port)


@pytest_twisted.ensureDeferred
async def test_an_aborted_connection_is_counted_before_its_socket_closes() -> None:
    factory = track(EchoFactory(idle_timeout=0.2, reactor=reactor))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        client = await connect_collector(port.getHost().port)
        client.transport.write(b"b" * 10)
        await client.wait_for(10)
        await client.lost  # the server aborts the idle connection
        server_side = await factory.closed.get()
        assert (factory.sockets.bytes_in, factory.sockets.bytes_out) == (10, 10)
        assert "connectionLost" not in vars(server_side.transport)  # the hook is gone with the connection
    finally:
        await stop_tracked(factory, port)
