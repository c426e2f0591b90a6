"""``twistd netsuite --mode chat,irc``: the IRC service and the line chat share one ChatServer; its options."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.python import usage

from suite.tap import Options
from tests.chat.test_loopback import join
from tests.helpers import listening_port, twistd
from tests.irc.test_limits import IRCLine


@pytest_twisted.ensureDeferred
async def test_chat_and_irc_services_share_rooms(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_text("第一行 of the MOTD\n")
    run = twistd("--mode", "chat,irc", "--chat-listen", "tcp:0:interface=127.0.0.1",
                 "--irc-listen", "tcp:0:interface=127.0.0.1", "--irc-motd", str(motd), "--irc-server-name", "irc.test")
    try:
        chat_port, irc_port = await listening_port(run, "chat"), await listening_port(run, "irc")
        nc = await join(chat_port, "ncuser")
        irc = IRCLine()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", irc_port), irc)
        irc.transport.write("NICK 小明\r\nUSER x 0 * :x\r\nJOIN #lobby\r\n".encode())
        await irc.wait_for(r"^:irc\.test 372 小明 :- 第一行 of the MOTD$")
        await nc.wait_for(r"^\*\*\* join: 小明 joined lobby$")
        irc.transport.write("PRIVMSG #lobby :你好 nc\r\n".encode())
        await nc.wait_for(r"^\[lobby\] <小明> 你好 nc$")
        nc.transport.write(b"hello irc\n")
        await irc.wait_for(r"^:ncuser!chat@netsuite PRIVMSG #lobby :hello irc$")
        irc.transport.loseConnection()
        nc.transport.loseConnection()
        await irc.lost
        await nc.lost
    finally:
        run.terminate()
        await run.ended


def test_irc_is_part_of_mode_all() -> None:
    options = Options()
    options.parseOptions([])
    assert options["mode"] == "all"
    assert options["irc-listen"] == "tcp:6667:interface=127.0.0.1"


@pytest.mark.parametrize("bad", [["--irc-server-name", "a b"], ["--irc-flood-burst", "0"], ["--irc-max-line", "-1"]])
def test_bad_irc_options_are_refused(bad: list[str]) -> None:
    with pytest.raises(usage.UsageError):
        Options().parseOptions(["--mode", "irc", *bad])


def test_quiet_joins_option_reaches_the_shared_chat_server() -> None:
    from suite.chat.service import CHAT_SERVICE, chat_server
    from suite.service import ServiceContext

    config = {option.name: option.default for option in CHAT_SERVICE.options}
    config["chat-quiet-joins"] = 5
    assert chat_server(config, ServiceContext(reactor=reactor)).quiet_joins == 5
    config["chat-quiet-joins"] = 0
    assert chat_server(config, ServiceContext(reactor=reactor)).quiet_joins is None
