"""The embedding guide's .tac file runs under twistd, and its services work."""

from pathlib import Path

import pytest_twisted

from tests.chat.test_loopback import join
from tests.helpers import ROOT, connect_collector, listening_port, spawn


@pytest_twisted.ensureDeferred
async def test_tac_file_runs(tmp_path: Path) -> None:
    env = {f"NETSUITE_{name}_PORT": "0" for name in ("ECHO", "UDP", "CHAT", "FILES")}
    env.update(NETSUITE_CHAT_SOCKET=str(tmp_path / "chat.sock"), NETSUITE_STORAGE=str(tmp_path / "files"))
    server = spawn(["twistd", "-n", "--pidfile=", "-y", str(ROOT / "docs/examples/embedding/netsuite.tac")],
                   cwd=tmp_path, env=env)
    try:
        echo = await listening_port(server, "echo")
        chat = await listening_port(server, "chat")
        await server.wait_for(rb"chat-unix listening on unix ")
        await server.wait_for(rb"files listening on tcp ")
        client = await connect_collector(echo)
        client.transport.write(b"embedded")
        assert await client.wait_for(8) == b"embedded"
        client.transport.loseConnection()
        await client.lost
        alice = await join(chat, "alice")
        alice.transport.write(b"/who\n")
        assert await alice.wait_for(r"^\*\*\* who:") == "*** who: 1 user in lobby: alice"
        alice.transport.loseConnection()
        await alice.lost
    finally:
        server.terminate()
        await server.ended
