"""SIGTERM to ``twistd netsuite --mode upload`` during uploads: plain temporaries removed, partials kept."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from tests.files.test_hostile import until
from tests.helpers import Collector, listening_port, twistd


@pytest_twisted.ensureDeferred
async def test_sigterm_removes_plain_temporaries_and_keeps_partials(tmp_path: Path) -> None:
    storage = tmp_path / "store"
    server = twistd("--mode", "upload", "--upload-listen", "tcp:0:interface=127.0.0.1",
                    "--storage", str(storage), "--min-free", "0", cwd=tmp_path)
    try:
        port = await listening_port(server, "upload")
        data = b"x" * 1_000_000
        digest = hashlib.sha256(data).hexdigest()
        clients = []
        for header in (b"PUT 1000000 plain\n", f"PUT sha256={digest} 1000000 resumable\n".encode()):
            client = Collector()
            await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
            client.transport.write(header + data[:400_000])
            clients.append(client)

        def hidden() -> list[str]:
            return sorted(p.name for p in storage.iterdir() if p.name.startswith((".tmp-", ".part-")))

        await until(lambda: len(hidden()) == 3)  # .tmp-*, .part-*, .part-*.json
        server.terminate()
        status = await server.ended
    finally:
        if not server.ended.called:
            server.terminate()
            await server.ended
    # twistd re-raises SIGTERM after its orderly shutdown (docs/protocols/files.md).
    assert status in (0, -signal.SIGTERM)
    left = hidden()
    assert not [name for name in left if name.startswith(".tmp-")], left
    assert len([name for name in left if name.startswith(".part-")]) == 2
    assert [p.name for p in storage.iterdir() if not p.name.startswith(".")] == []
    for client in clients:
        client.transport.loseConnection()
    await defer.DeferredList([c.lost for c in clients], consumeErrors=True)
