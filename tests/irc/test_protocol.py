"""The IRC front in memory: registration, every command's numerics, limits, and talk with line users."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from suite.chat import ChatFactory, ChatServer
from suite.irc import IRCConnection, IRCFactory


class Client:
    """One connection (IRC or line chat) on an in-memory transport."""

    def __init__(self, proto: object, transport: StringTransport) -> None:
        self.proto = proto
        self.transport = transport
        self._read = 0

    def send(self, *lines: str | bytes, end: bytes = b"\r\n") -> None:
        self.proto.dataReceived(b"".join((line.encode() if isinstance(line, str) else line) + end for line in lines))

    def lines(self) -> list[str]:
        data = self.transport.value()[self._read :]
        self._read += len(data)
        return data.decode().splitlines()


class Net:
    """An IRC factory and a line-chat factory sharing one ChatServer, on a fake clock."""

    def __init__(self, **kwargs: object) -> None:
        self.clock = Clock()
        self.server = ChatServer(clock=lambda: 1_000_000.0)
        kwargs.setdefault("max_per_ip", None)
        self.irc = IRCFactory(self.server, reactor=self.clock, **kwargs)  # type: ignore[arg-type]
        self.chat = ChatFactory(self.server, reactor=self.clock, max_per_ip=None)
        self._ports = iter(range(40000, 50000))

    def connect(self, factory: object) -> Client:
        address = IPv4Address("TCP", "127.0.0.1", next(self._ports))
        proto = factory.buildProtocol(address)  # type: ignore[attr-defined]
        transport = StringTransport(peerAddress=address)
        proto.makeConnection(transport)
        return Client(proto, transport)

    def user(self, nick: str, join: str | None = "#lobby") -> Client:
        client = self.connect(self.irc)
        client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} real")
        if join:
            client.send(f"JOIN {join}")
        client.lines()
        return client

    def nc(self, nick: str) -> Client:
        client = self.connect(self.chat)
        client.send(f"/nick {nick}", end=b"\n")
        client.lines()
        return client


@pytest.fixture
def net() -> Net:
    return Net()


def codes(lines: list[str]) -> list[str]:
    return [line.split(" ")[1] for line in lines]


# --- registration ------------------------------------------------------------------


def test_registration_with_cap_negotiation(net: Net) -> None:
    c = net.connect(net.irc)
    c.send("CAP LS 302", "NICK alice", "USER al 0 * :Alice A")
    assert c.lines() == [":netsuite CAP * LS :"]  # waits for CAP END
    c.send("CAP REQ :multi-prefix sasl")
    assert c.lines() == [":netsuite CAP * NAK :multi-prefix sasl"]
    c.send("CAP END")
    lines = c.lines()
    assert codes(lines)[:5] == ["001", "002", "003", "004", "005"]
    assert lines[0] == ":netsuite 001 alice :Welcome to the netsuite IRC network alice!~al@127.0.0.1"
    isupport = lines[4].split(" ")
    for token in ("CASEMAPPING=rfc8265", "CHANTYPES=#", "PREFIX=", "NICKLEN=32", "CHANNELLEN=33", "NETWORK=netsuite", "UTF8ONLY"):
        assert token in isupport
    assert "letters or digits of any script" in lines[5]  # what names may be
    assert codes(lines)[6:] == ["375", "372", "372", "372", "372", "376"]


def test_no_motd_gives_422() -> None:
    net = Net(motd=None)
    c = net.connect(net.irc)
    c.send("NICK a", "USER a 0 * :a")
    assert codes(c.lines())[-1] == "422"


def test_commands_before_registration_get_451(net: Net) -> None:
    c = net.connect(net.irc)
    c.send("JOIN #lobby", "PRIVMSG #lobby :hi")
    assert c.lines() == [":netsuite 451 * :You have not registered"] * 2
    c.send("PING :x")
    assert c.lines() == [":netsuite PONG netsuite :x"]


@pytest.mark.parametrize(
    "line, code",
    [("NICK", "431"), ("NICK a.b", "432"), ("NICK #x", "432"), ("NICK a\u200bb", "432"), ("USER a", "461")],
)
def test_registration_errors(net: Net, line: str, code: str) -> None:
    c = net.connect(net.irc)
    c.send(line)
    assert codes(c.lines()) == [code]


def test_432_says_what_is_allowed(net: Net) -> None:
    c = net.connect(net.irc)
    c.send("NICK a.b")
    (line,) = c.lines()
    assert "'.' (U+002E FULL STOP) is not allowed" in line and "letters or digits of any script" in line


def test_nick_taken_by_a_line_user_or_lookalike_is_433(net: Net) -> None:
    net.nc("alice")
    c = net.connect(net.irc)
    c.send("NICK ALICE", "NICK аlice")
    lines = c.lines()
    assert codes(lines) == ["433", "433"] and "looks like alice" in lines[1]
    c.send("NICK 小明", "USER x 0 * :x")
    assert codes(c.lines())[0] == "001"


def test_password_required_when_set() -> None:
    net = Net(password="s3cret")
    bad = net.connect(net.irc)
    bad.send("NICK a", "USER a 0 * :a")
    lines = bad.lines()
    assert codes(lines[:-1]) == ["464"] and lines[-1].startswith("ERROR :Closing Link")
    good = net.connect(net.irc)
    good.send("PASS s3cret", "NICK a", "USER a 0 * :a")
    assert codes(good.lines())[0] == "001"


# --- rooms and talk across fronts -----------------------------------------------------


def test_join_echo_topic_names_and_nc_talk(net: Net) -> None:
    nc = net.nc("ncuser")
    net.server.topic(net.server.find_user("ncuser"), "welcome all")
    nc.lines()
    alice = net.user("alice", join=None)
    alice.send("JOIN #lobby")
    assert alice.lines() == [
        ":alice!~alice@127.0.0.1 JOIN #lobby",
        ":netsuite 332 alice #lobby :welcome all",
        ":netsuite 333 alice #lobby ncuser 1000000",
        ":netsuite 353 alice = #lobby :ncuser alice",
        ":netsuite 366 alice #lobby :End of /NAMES list.",
    ]
    assert nc.lines() == ["*** join: alice joined lobby"]
    alice.send("PRIVMSG #lobby :hello nc", "PRIVMSG #lobby :\x01ACTION waves\x01", "PRIVMSG ncuser :psst")
    assert alice.lines() == []  # no echo of one's own messages
    assert nc.lines() == ["[lobby] <alice> hello nc", "[lobby] * alice waves", "[private] <alice -> ncuser> psst"]
    nc.send("hello irc", "/me nods", "/msg alice back", end=b"\n")
    assert alice.lines() == [
        ":ncuser!chat@netsuite PRIVMSG #lobby :hello irc",
        ":ncuser!chat@netsuite PRIVMSG #lobby :\x01ACTION nods\x01",
        ":ncuser!chat@netsuite PRIVMSG alice :back",
    ]


def test_history_is_replayed_as_notices(net: Net) -> None:
    nc = net.nc("ncuser")
    nc.send("earlier", end=b"\n")
    alice = net.user("alice", join=None)
    alice.send("JOIN #lobby")
    assert ":netsuite NOTICE #lobby :[history] <ncuser> earlier" in alice.lines()


def test_join_moves_and_part_quit_nick_topic_are_broadcast(net: Net) -> None:
    alice, bob = net.user("alice"), net.user("bob")
    alice.lines()
    bob.send("JOIN #dev")
    assert bob.lines()[:2] == [":bob!~bob@127.0.0.1 PART #lobby :Joined #dev", ":bob!~bob@127.0.0.1 JOIN #dev"]
    assert alice.lines() == [":bob!~bob@127.0.0.1 PART #lobby :joined dev"]
    bob.send("JOIN #lobby", "NICK robert", "TOPIC #lobby :release day")
    bob.lines()
    assert alice.lines() == [
        ":bob!~bob@127.0.0.1 JOIN #lobby",
        ":bob!~bob@127.0.0.1 NICK :robert",
        ":robert!~bob@127.0.0.1 TOPIC #lobby :release day",
    ]
    bob.send("PART #lobby :later")
    assert bob.lines() == [":robert!~bob@127.0.0.1 PART #lobby :later"]
    assert alice.lines() == [":robert!~bob@127.0.0.1 PART #lobby :later"]
    bob.send("JOIN #lobby")
    alice.lines()
    bob.send("QUIT :gone home")
    assert bob.lines()[-1] == "ERROR :Closing Link: 127.0.0.1 (Quit: gone home)"
    assert alice.lines() == [":robert!~bob@127.0.0.1 QUIT :Quit: gone home"]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("PRIVMSG", ["411"]),
        ("PRIVMSG #lobby", ["412"]),
        ("PRIVMSG nobody :x", ["401"]),
        ("PRIVMSG #nowhere :x", ["403"]),
        ("PART #nowhere", ["403"]),
        ("JOIN", ["461"]),
        ("JOIN #a.b", ["403"]),
        ("JOIN lobby", ["403"]),
        ("FROB x", ["421"]),
        ("NICK", ["431"]),
        ("NICK a!b", ["432"]),
        ("PING", ["409"]),
        ("USER a 0 * :a", ["462"]),
        ("MODE #lobby +o bob", ["482"]),
        ("WHOIS nobody", ["401", "318"]),
    ],
)
def test_error_numerics(net: Net, line: str, expected: list[str]) -> None:
    alice = net.user("alice")
    alice.send(line)
    assert codes(alice.lines()) == expected


def test_404_and_442_outside_the_channel(net: Net) -> None:
    alice, bob = net.user("alice"), net.user("bob", join="#dev")
    bob.send("PRIVMSG #lobby :hi", "PART #lobby", "TOPIC #lobby :x")
    assert codes(bob.lines()) == ["404", "442", "442"]
    assert alice.lines() == []


def test_433_on_nick_change(net: Net) -> None:
    net.user("alice")
    bob = net.user("bob")
    bob.send("NICK Alice")
    assert codes(bob.lines()) == ["433"]


def test_queries(net: Net) -> None:
    alice = net.user("alice")
    net.nc("ncuser")
    alice.lines()
    alice.send("TOPIC #lobby", "NAMES #lobby", "LIST", "WHO #lobby", "WHOIS ncuser", "MODE #lobby", "MODE #lobby b",
               "MODE alice", "AWAY :lunch", "AWAY", "ISON ncuser nobody ALICE", "USERHOST ncuser")
    assert codes(alice.lines()) == [
        "331", "353", "366", "321", "322", "323", "352", "352", "315", "311", "319", "312", "318",
        "324", "329", "368", "221", "306", "305", "303", "302",
    ]


def test_away_is_told_to_senders(net: Net) -> None:
    alice, bob = net.user("alice"), net.user("bob")
    alice.send("AWAY :lunch")
    alice.lines()
    bob.send("PRIVMSG alice :hi")
    assert bob.lines() == [":netsuite 301 bob alice :lunch"]
    bob.send("WHO alice")
    assert " G :0 " in bob.lines()[0]


# --- limits and hostile input -------------------------------------------------------


def test_non_utf8_is_replaced_not_refused(net: Net) -> None:
    alice = net.user("alice")
    nc = net.nc("ncuser")
    alice.send(b"PRIVMSG #lobby :caf\xe9 \xff")
    assert nc.lines() == ["[lobby] <alice> caf\ufffd \ufffd"]


def test_control_characters_never_reach_others(net: Net) -> None:
    alice, bob = net.user("alice"), net.user("bob")
    alice.send("PRIVMSG #lobby :a\rPRIVMSG #x :b\x1b[2J")
    assert bob.lines() == [":alice!~alice@127.0.0.1 PRIVMSG #lobby :a\ufffdPRIVMSG #x :b\ufffd[2J"]


def test_long_lines_get_417_and_memory_stays_bounded() -> None:
    net = Net(max_line=100)
    alice = net.user("alice")
    alice.send("PRIVMSG #lobby :" + "x" * 200)
    assert codes(alice.lines()) == ["417"]
    alice.proto.dataReceived(b"y" * 10_000)  # no line end, ever
    assert codes(alice.lines()) == ["417"] and len(alice.proto._buffer) == 0
    alice.proto.dataReceived(b"y" * 10_000 + b"\r\nPING :ok\r\n")
    assert alice.lines() == [":netsuite PONG netsuite :ok"]


def test_long_messages_are_split_for_irc_clients(net: Net) -> None:
    alice = net.user("alice")
    nc = net.nc("ncuser")
    alice.lines()
    nc.send("é" * 600, end=b"\n")
    lines = alice.lines()
    assert len(lines) == 3 and all(len(line.encode()) <= 510 for line in lines)
    assert "".join(line.split(" :", 1)[1] for line in lines) == "é" * 600


def test_excess_flood() -> None:
    net = Net(flood_rate=1.0, flood_burst=3)
    alice, bob = net.user("alice"), net.user("bob")
    alice.lines()
    alice.send(*["PRIVMSG #lobby :x"] * 8)
    lines = alice.lines()
    assert "*** flood: too many lines" in lines[0]
    assert lines[-1] == "ERROR :Closing Link: 127.0.0.1 (Excess Flood)"
    assert bob.lines()[-1] == ":alice!~alice@127.0.0.1 QUIT :flood"


def test_send_queue_exceeded() -> None:
    net = Net(max_pending=1000)
    alice, bob = net.user("alice"), net.user("bob")
    bob.proto.pauseProducing()  # bob stops reading
    for _ in range(30):
        alice.send("PRIVMSG #lobby :" + "z" * 50)
    assert bob.lines()[-1] == "ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)"
    assert alice.lines()[-1] == ":bob!~bob@127.0.0.1 QUIT :send queue exceeded"


def test_ping_timeout_disconnects_a_dead_client(net: Net) -> None:
    alice, bob = net.user("alice"), net.user("bob")
    alice.lines()
    net.clock.advance(IRCFactory.DEFAULT_PING_INTERVAL)
    assert alice.lines() == ["PING :netsuite"] and bob.lines() == ["PING :netsuite"]
    alice.send("PONG :netsuite")
    net.clock.advance(IRCFactory.DEFAULT_PING_TIMEOUT)
    assert bob.lines()[-1] == "ERROR :Closing Link: 127.0.0.1 (Ping timeout: 60 seconds)"
    assert alice.lines() == [":bob!~bob@127.0.0.1 QUIT :ping timeout"]  # alice answered: still here
    assert net.server.find_user("alice") is alice.proto and net.server.find_user("bob") is None


def test_registration_timeout(net: Net) -> None:
    c = net.connect(net.irc)
    c.send("NICK slow")
    net.clock.advance(IRCFactory.DEFAULT_REGISTER_TIMEOUT)
    assert c.lines() == ["ERROR :Closing Link: 127.0.0.1 (Registration timeout)"]


def test_connection_caps_refuse_in_irc_form() -> None:
    net = Net(max_connections=1)
    net.user("alice")
    c = net.connect(net.irc)
    assert c.lines() == ["ERROR :Closing Link: (too many connections (limit 1))"]
    assert not c.transport.connected or c.transport.disconnecting


def test_stop_factory_closes_everyone(net: Net) -> None:
    alice = net.user("alice")
    net.irc.stopFactory()
    assert alice.lines()[-1] == "ERROR :Closing Link: 127.0.0.1 (Server shutting down)"


def test_is_a_chat_user() -> None:
    assert IRCConnection.tracks_members


def test_configure_applies_to_open_connections(net: Net) -> None:
    alice, bob = net.user("alice"), net.user("bob")
    alice.lines()
    net.irc.configure(max_line=50, flood_rate=1.0, flood_burst=1, max_pending=None,
                      ping_interval=90.0, ping_timeout=60.0, register_timeout=60.0)
    alice.send("PRIVMSG #lobby :" + "x" * 60)
    assert codes(alice.lines()) == ["417"]
    alice.send("PRIVMSG #lobby :one", "PRIVMSG #lobby :two")
    assert bob.lines()[-1] == ":alice!~alice@127.0.0.1 PRIVMSG #lobby :one"
    assert "*** flood" in alice.lines()[0]


def test_metrics_counters_lines_delivered_and_disconnects_by_reason(net: Net) -> None:
    """IRC lines read, the shared ChatServer's deliveries, and why clients left (suite.metrics reads them)."""
    alice, bob = net.user("alice"), net.user("bob")
    lines, delivered = net.irc.lines_received, net.server.lines_delivered
    alice.send("PRIVMSG #lobby :hello")
    assert net.irc.lines_received == lines + 1
    assert net.server.lines_delivered == delivered + 2  # one per member of the room, counted once
    alice.send("QUIT :bye")
    bob.proto.connectionLost(Failure(ConnectionDone()))
    assert net.irc.disconnects == {"quit": 1, "connection-lost": 1}
    carol = net.connect(net.irc)
    net.clock.advance(net.irc.register_timeout)
    assert carol.transport.value().endswith(b"(Registration timeout)\r\n")
    assert net.irc.disconnects["registration-timeout"] == 1
