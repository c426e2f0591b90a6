"""Chat protocol logic in memory: every command, notice, limit and error."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from suite.chat import ChatFactory, ChatProtocol, ChatServer, wire


class Harness:
    """A ChatFactory on a fake clock, with users on in-memory transports."""

    def __init__(self, **kwargs: object) -> None:
        self.clock = Clock()
        kwargs.setdefault("max_per_ip", None)
        self.factory = ChatFactory(reactor=self.clock, **kwargs)  # type: ignore[arg-type]
        self._ports = iter(range(40000, 50000))

    def run_turns(self) -> None:
        """Let the reactor turn until nothing is due now (lines waiting for their turn)."""
        while any(call.getTime() <= self.clock.seconds() for call in self.clock.getDelayedCalls()):
            self.clock.advance(0)

    def connect(self, host: str = "192.0.2.1", nick: str | None = None) -> User:
        address = IPv4Address("TCP", host, next(self._ports))
        proto = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        proto.makeConnection(transport)
        user = User(proto, transport)
        if nick:
            user.say(f"/nick {nick}")
        user.lines()
        return user


class User:
    def __init__(self, proto: ChatProtocol, transport: StringTransport) -> None:
        self.proto = proto
        self.transport = transport
        self._read = 0

    def send(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def say(self, text: str) -> None:
        self.send(text.encode() + b"\n")

    def lines(self) -> list[str]:
        """Lines received since the last call."""
        data = self.transport.value()[self._read :]
        self._read += len(data)
        assert not data or data.endswith(b"\n")
        assert b"\r" not in data, "no stray CR in server output"
        return data.decode().splitlines()

    def drop(self, reason: type[Exception] = ConnectionLost) -> None:
        self.proto.connectionLost(Failure(reason()))


@pytest.fixture
def chat() -> Harness:
    return Harness()


# --- joining, nicks ----------------------------------------------------------------


def test_welcome_and_guest_nick(chat: Harness) -> None:
    proto = chat.factory.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 1))
    proto.makeConnection(transport)
    assert transport.value().decode().splitlines() == [
        "*** welcome: you are guest1; /nick NAME to change it, /help for commands",
        "*** join: guest1 joined lobby",
    ]
    assert proto.nick == "guest1" and proto.room.name == "lobby"


def test_guest_nick_skips_taken_names(chat: Harness) -> None:
    chat.connect(nick="guest2")
    assert chat.connect().proto.nick == "guest3"


def test_others_see_join(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    chat.connect(nick="bob")
    assert alice.lines() == ["*** join: guest2 joined lobby", "*** nick: guest2 is now bob"]


def test_nick_change(chat: Harness) -> None:
    alice = chat.connect()
    bob = chat.connect()
    alice.lines()
    alice.say("/nick alice")
    assert alice.lines() == ["*** nick: guest1 is now alice"]
    assert bob.lines() == ["*** nick: guest1 is now alice"]


@pytest.mark.parametrize("bad", ["al ice", "x" * 33, "a.b", "#x", "a\u200bb", "a\u202eb", "🙂"])
def test_invalid_nick(chat: Harness, bad: str) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.say(f"/nick {bad}")
    (line,) = alice.lines()
    assert line.startswith("!!! nick-invalid: ") and "use 1-32 letters or digits of any script, _ or -" in line
    assert bob.lines() == []
    assert alice.proto.nick == "alice"


def test_taken_nick_is_case_insensitive(chat: Harness) -> None:
    chat.connect(nick="Alice")
    bob = chat.connect(nick="bob")
    bob.say("/nick aLiCe")
    assert bob.lines() == ["!!! nick-taken: the nickname aLiCe is taken"]


def test_own_nick_recase_and_same(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.say("/nick Alice")
    assert alice.lines() == ["*** nick: alice is now Alice"]
    alice.say("/nick Alice")
    assert alice.lines() == ["*** info: you are already Alice"]


def test_nick_free_when_owner_gone(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.drop()
    assert bob.lines() == ["*** leave: alice left lobby (connection lost)"]
    bob.say("/nick alice")
    assert bob.lines() == ["*** nick: bob is now alice"]


# --- talking ------------------------------------------------------------------------


def test_message_reaches_room_with_nick(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.say("hello, world")
    assert alice.lines() == bob.lines() == ["[lobby] <alice> hello, world"]


def test_lf_and_crlf_give_identical_results(chat: Harness) -> None:
    nc = chat.connect(nick="nc")
    telnet = chat.connect(nick="telnet")
    nc.lines()
    nc.send(b"from nc\n")
    telnet.send(b"from telnet\r\n/me waves\r\n")
    expected = ["[lobby] <nc> from nc", "[lobby] <telnet> from telnet", "[lobby] * telnet waves"]
    assert nc.lines() == telnet.lines() == expected


def test_lines_split_across_reads(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    for piece in [b"hel", b"lo\r", b"\nwor", b"ld\n"]:
        alice.send(piece)
    assert alice.lines() == ["[lobby] <alice> hello", "[lobby] <alice> world"]


def test_blank_lines_are_ignored(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.send(b"\n\r\n   \n")
    assert alice.lines() == []


def test_slash_escape(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.say("//etc/passwd is a path")
    assert alice.lines() == ["[lobby] <alice> /etc/passwd is a path"]


def test_me(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.say("/me waves  happily")
    assert alice.lines() == bob.lines() == ["[lobby] * alice waves  happily"]


def test_private_message_only_to_target_and_sender(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    carol = chat.connect(nick="carol")
    bob.say("/join elsewhere")
    for u in (alice, bob, carol):
        u.lines()
    alice.say("/msg BOB psst, secret  stuff")
    assert alice.lines() == bob.lines() == ["[private] <alice -> bob> psst, secret  stuff"]
    assert carol.lines() == []


def test_private_message_errors(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.say("/msg nobody hi")
    alice.say("/msg bob")
    alice.say("/msg")
    assert alice.lines() == [
        "!!! no-such-nick: nobody is called nobody",
        "!!! missing-argument: usage: /msg NICK TEXT",
        "!!! missing-argument: usage: /msg NICK TEXT",
    ]


def test_control_characters_cannot_forge_lines(chat: Harness) -> None:
    mallory = chat.connect(nick="mallory")
    bob = chat.connect(nick="bob")
    mallory.send(b"hi\r[lobby] <admin> give me your password\x1b[2K\n")
    (line,) = bob.lines()
    assert line == "[lobby] <mallory> hi\ufffd[lobby] <admin> give me your password\ufffd[2K"


def test_invalid_utf8_is_an_error_and_connection_stays(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.send(b"caf\xe9\n")
    assert alice.lines() == ["!!! invalid-utf8: line is not valid UTF-8; it was rejected"]
    assert bob.lines() == []
    alice.say("café")
    assert bob.lines() == ["[lobby] <alice> café"]


# --- rooms and history ----------------------------------------------------------


def test_join_moves_between_rooms(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.say("/join #dev")
    assert alice.lines() == ["*** join: alice joined dev"]
    assert bob.lines() == ["*** leave: alice left lobby (joined dev)"]
    alice.say("only dev hears this")
    assert bob.lines() == []
    bob.say("/join DEV")
    assert alice.lines()[-1] == "*** join: bob joined dev"
    assert bob.lines()[0] == "*** join: bob joined dev"  # the room keeps its first spelling


def test_join_errors(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.say("/join")
    alice.say("/join bad room")
    alice.say("/join lobby")
    lines = alice.lines()
    assert lines[0] == "!!! missing-argument: usage: /join ROOM"
    assert lines[1].startswith("!!! room-invalid: 'bad room' is not a valid room name")
    assert lines[2] == "*** info: you are already in lobby"


def test_who_and_rooms(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    chat.connect(nick="bob")
    carol = chat.connect(nick="carol")
    carol.say("/join dev")
    alice.lines()
    alice.say("/who")
    alice.say("/rooms")
    assert alice.lines() == ["*** who: 2 users in lobby: alice, bob", "*** rooms: dev (1), lobby (2)"]
    carol.say("/who")
    assert carol.lines()[-1] == "*** who: 1 user in dev: carol"


def test_empty_rooms_disappear_but_lobby_stays(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.say("/join dev")
    alice.say("/join lobby")
    alice.lines()
    alice.say("/rooms")
    assert alice.lines() == ["*** rooms: lobby (1)"]


def test_history_replayed_and_marked() -> None:
    chat = Harness(history=2)
    alice = chat.connect(nick="alice")
    for text in ["one", "two", "three"]:
        alice.say(text)
    alice.say("/me is done")
    bob = chat.connect()  # bob's welcome included history; read it raw
    lines = bob.transport.value().decode().splitlines()
    assert lines[-2:] == ["[history lobby] <alice> three", "[history lobby] * alice is done"]


def test_history_disabled() -> None:
    chat = Harness(history=0)
    alice = chat.connect(nick="alice")
    alice.say("gone")
    bob_lines = chat.connect().transport.value().decode()
    assert "history" not in bob_lines


def test_history_excludes_private_and_notices(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    chat.connect(nick="bob")
    alice.say("/msg bob secret")
    alice.say("public")
    newcomer = chat.connect().transport.value().decode()
    assert "secret" not in newcomer
    assert "[history lobby] <alice> public" in newcomer


# --- commands -------------------------------------------------------------------


def test_help_lists_every_command(chat: Harness) -> None:
    alice = chat.connect()
    alice.say("/help")
    lines = alice.lines()
    assert all(line.startswith("*** help: ") for line in lines)
    for command in ["/nick", "/who", "/msg", "/me", "/join", "/rooms", "/quit", "/help"]:
        assert any(line.startswith(f"*** help: {command}") for line in lines)


def test_unknown_command_only_to_sender(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.say("/frobnicate now")
    alice.say("/me")
    assert alice.lines() == [
        "!!! unknown-command: unknown command /frobnicate; /help lists commands",
        "!!! missing-argument: usage: /me ACTION",
    ]
    assert bob.lines() == []


def test_quit_with_reason(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.say("/quit off to lunch")
    assert alice.lines() == ["*** bye: goodbye"]
    assert alice.transport.disconnecting
    assert bob.lines() == ["*** leave: alice left lobby (quit: off to lunch)"]
    # The nick is free at once, and the later connectionLost changes nothing.
    bob.say("/nick alice")
    alice.drop(ConnectionDone)
    assert bob.lines() == ["*** nick: bob is now alice"]


def test_quit_closes_even_if_client_never_reads(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.say("/quit")
    assert alice.transport.disconnecting and not alice.transport.disconnected
    chat.clock.advance(chat.factory.close_grace)
    assert alice.transport.disconnected  # aborted


def test_abrupt_disconnect_notice(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    bob.drop()
    assert alice.lines() == ["*** leave: bob left lobby (connection lost)"]
    assert "bob" not in chat.factory.server.users


def test_lines_after_quit_in_same_read_are_ignored(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.send(b"/quit\nnot delivered\n")
    assert bob.lines() == ["*** leave: alice left lobby (quit)"]


# --- limits ----------------------------------------------------------------------


def test_long_line_rejected_never_broadcast() -> None:
    chat = Harness(max_line=12)
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    alice.send(b"x" * 13 + b"\n" + b"0123456789ab\r\n")
    assert alice.lines() == ["!!! line-too-long: line longer than 12 bytes rejected", "[lobby] <alice> 0123456789ab"]
    assert bob.lines() == ["[lobby] <alice> 0123456789ab"]


def test_endless_line_memory_stays_bounded() -> None:
    chat = Harness(max_line=100)
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    for _ in range(1000):  # 1 MB, no newline
        alice.send(b"y" * 1000)
        assert len(alice.proto._buffer) <= 101
    alice.send(b"tail of the long line\nafter\n")
    assert alice.lines() == ["!!! line-too-long: line longer than 100 bytes rejected", "[lobby] <alice> after"]
    assert bob.lines() == ["[lobby] <alice> after"]


def test_flood_rejects_then_disconnects() -> None:
    chat = Harness(flood_rate=1, flood_burst=3)
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    chat.clock.advance(10)  # refill the buckets the /nick commands used
    alice.lines()
    alice.send(b"".join(b"line %d\n" % i for i in range(5)))
    lines = alice.lines()
    assert lines[:3] == ["[lobby] <alice> line 0", "[lobby] <alice> line 1", "[lobby] <alice> line 2"]
    assert lines[3].startswith("!!! flood: too many lines (limit 1/s, burst 3)")
    assert len(lines) == 4  # one warning, not one per line
    assert bob.lines() == lines[:3]
    chat.clock.advance(1)  # one token back: accepted, strikes reset
    alice.say("calm")
    assert bob.lines() == ["[lobby] <alice> calm"]
    alice.send(b"spam\n" * 10)  # sustained excess
    assert alice.lines()[-1] == "!!! flood: disconnected for flooding"
    assert alice.transport.disconnecting
    assert bob.lines()[-1] == "*** leave: alice left lobby (flood)"
    # Others are unaffected.
    carol = chat.connect(nick="carol")
    carol.say("hi")
    assert bob.lines()[-1] == "[lobby] <carol> hi"


def test_steady_flooder_is_warned_once_then_disconnected() -> None:
    """200 lines/s, one line every 5 ms, against the default 10/s: one warning, then out."""
    chat = Harness()
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    chat.clock.advance(10)
    alice.lines()
    for _ in range(2000):  # at most 10 s of flooding
        if alice.transport.disconnecting:
            break
        alice.say("spam")
        chat.clock.advance(0.005)
    lines = alice.lines()
    warnings = [line for line in lines if line.startswith("!!! flood: too many lines")]
    assert len(warnings) == 1
    assert lines[-1] == "!!! flood: disconnected for flooding"
    assert chat.clock.seconds() - 10 < 1.0, "disconnected within a second"
    assert bob.lines()[-1] == "*** leave: alice left lobby (flood)"


def test_flood_warning_is_forgotten_after_a_quiet_refill() -> None:
    chat = Harness(flood_rate=1, flood_burst=3)
    alice = chat.connect(nick="alice")
    chat.clock.advance(10)
    alice.lines()
    alice.send(b"x\n" * 4)  # three pass, the fourth warns
    assert alice.lines()[-1].startswith("!!! flood: too many lines")
    chat.clock.advance(3)  # burst / rate: a full bucket again
    alice.say("calm")
    alice.send(b"y\n" * 4)
    assert [line for line in alice.lines() if line.startswith("!!! flood")] == [
        "!!! flood: too many lines (limit 1/s, burst 3); lines are rejected until you slow down; "
        "keep on and you are disconnected"
    ]
    assert not alice.transport.disconnecting


def test_flood_control_off() -> None:
    chat = Harness(flood_rate=None)
    alice = chat.connect(nick="alice")
    alice.send(b"x\n" * 5000)
    chat.run_turns()
    assert len(alice.lines()) == 5000


def test_pipelined_lines_take_turns() -> None:
    """A client that pipelines thousands of lines gets a budget per reactor turn; the rest waits."""
    chat = Harness(flood_rate=None)
    alice = chat.connect(nick="alice")
    alice.send(b"x\n" * 2500)
    assert len(alice.lines()) == ChatProtocol.MAX_LINES_PER_TURN
    assert alice.transport.producerState == "paused"
    # (task.Clock runs the next turns at once; the reactor runs other I/O between them.)
    chat.clock.advance(0)
    assert len(alice.lines()) == 1500
    assert alice.transport.producerState == "producing"


def test_send_queue_cap_disconnects_slow_reader() -> None:
    chat = Harness(max_pending=1000, flood_rate=None)
    alice = chat.connect(nick="alice")
    slow = chat.connect(nick="slow")
    alice.lines()
    slow.proto.pauseProducing()  # its transport buffer is full: it is not reading
    alice.send(b"".join(b"message number %d\n" % i for i in range(30)))
    lines = alice.lines()
    assert len(lines) == 31
    assert "*** leave: slow left lobby (send queue exceeded)" in lines
    lines = slow.lines()
    assert lines[-1].startswith("!!! send-queue-exceeded: send queue exceeded (1000 bytes unread)")
    assert slow.transport.disconnecting
    assert "slow" not in chat.factory.server.users
    alice.say("still chatting")
    assert alice.lines()[-1] == "[lobby] <alice> still chatting"


def test_send_queue_leave_notice(chat: Harness) -> None:
    chat = Harness(max_pending=100, flood_rate=None)
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    slow = chat.connect(nick="slow")
    alice.lines()
    bob.lines()
    slow.proto.pauseProducing()
    alice.send(b"a fairly long message to fill the queue quickly\n" * 3)
    assert "*** leave: slow left lobby (send queue exceeded)" in bob.lines()


def test_paused_reader_gets_everything_after_resume() -> None:
    chat = Harness(flood_rate=None)
    alice = chat.connect(nick="alice")
    reader = chat.connect(nick="reader")
    reader.proto.pauseProducing()
    alice.say("one")
    alice.say("two")
    assert reader.lines() == []
    reader.proto.resumeProducing()
    assert reader.lines() == ["[lobby] <alice> one", "[lobby] <alice> two"]


class CountingTransport(StringTransport):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


def test_one_write_per_recipient_per_read() -> None:
    chat = Harness(flood_rate=None)
    sender = chat.connect(nick="sender")
    proto = chat.factory.buildProtocol(None)
    transport = CountingTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1))
    proto.makeConnection(transport)
    transport.writes = 0
    sender.send(b"".join(b"line %d\n" % i for i in range(100)))
    assert transport.writes == 1
    assert transport.value().count(b"\n") >= 100


def test_connection_cap() -> None:
    chat = Harness(max_connections=2)
    chat.connect()
    chat.connect()
    refused = chat.connect()
    assert refused.transport.value() == b"!!! too-many-connections: too many connections (limit 2)\n"
    assert refused.transport.disconnecting
    refused.drop(ConnectionDone)
    assert chat.factory.admission.open == 2


def test_per_ip_cap_and_exemption() -> None:
    chat = Harness(max_per_ip=2, per_ip_exempt=["127.0.0.1"])
    chat.connect("192.0.2.1")
    chat.connect("192.0.2.1")
    third = chat.connect("192.0.2.1")
    assert third.transport.value() == (
        b"!!! too-many-connections: too many connections from 192.0.2.1 (limit 2)\n"
    )
    other = chat.connect("192.0.2.2")
    assert not other.transport.disconnecting
    for _ in range(5):
        assert not chat.connect("127.0.0.1").transport.disconnecting


def test_per_ip_slot_freed_on_disconnect() -> None:
    chat = Harness(max_per_ip=1)
    first = chat.connect("192.0.2.1")
    first.drop()
    assert not chat.connect("192.0.2.1").transport.disconnecting


def test_unix_socket_clients_have_no_ip_cap() -> None:
    chat = Harness(max_per_ip=1)
    for _ in range(3):
        proto = chat.factory.buildProtocol(UNIXAddress(None))
        transport = StringTransport(peerAddress=UNIXAddress(None))
        proto.makeConnection(transport)
        assert not transport.disconnecting


def test_idle_timeout_off_by_default(chat: Harness) -> None:
    alice = chat.connect()
    chat.clock.advance(10**6)
    assert not alice.transport.disconnecting


def test_idle_timeout() -> None:
    chat = Harness(idle_timeout=60)
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    chat.clock.advance(59)
    bob.say("still here")
    chat.clock.advance(2)
    assert alice.lines()[-1] == "!!! idle-timeout: no input for 60s; disconnected"
    assert alice.transport.disconnecting
    assert not bob.transport.disconnecting
    assert bob.lines()[-1] == "*** leave: alice left lobby (idle timeout)"


def test_tcp_nodelay_set() -> None:
    from twisted.internet.interfaces import ITCPTransport
    from zope.interface import implementer

    @implementer(ITCPTransport)
    class TCPTransport(StringTransport):
        nodelay = False

        def setTcpNoDelay(self, enabled: bool) -> None:
            self.nodelay = enabled

    chat = Harness()
    proto = chat.factory.buildProtocol(None)
    transport = TCPTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 1))
    proto.makeConnection(transport)
    assert transport.nodelay


def test_shutdown_tells_everyone(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.lines()
    chat.factory.stopFactory()
    assert alice.lines()[-1] == "!!! server-shutdown: the server is shutting down"
    assert alice.transport.disconnecting


def test_two_servers_share_nothing() -> None:
    one, two = Harness(), Harness()
    one.connect(nick="alice")
    two.connect(nick="alice")  # no "taken": separate state
    assert one.factory.server is not two.factory.server


def test_factory_can_share_a_server() -> None:
    server = ChatServer()
    a = ChatFactory(server, reactor=Clock(), max_per_ip=None)
    b = ChatFactory(server, reactor=Clock(), max_per_ip=None)
    pa, pb = a.buildProtocol(None), b.buildProtocol(None)
    ta, tb = StringTransport(), StringTransport()
    pa.makeConnection(ta)
    pb.makeConnection(tb)
    pa.dataReceived(b"across listeners\n")
    assert b"<guest1> across listeners" in tb.value()


def test_telnet_commands_are_removed_and_options_refused(chat: Harness) -> None:
    """Ctrl-C in telnet sends IAC IP, IAC DO TIMING-MARK: not an invalid-utf8 error."""
    alice = chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    alice.lines()
    before = len(alice.transport.value())
    alice.send(b"hel\xff\xf4\xff\xfd\x06lo\r\n")
    # DO TIMING-MARK is refused (WONT), then the line without the commands.
    assert alice.transport.value()[before:] == b"\xff\xfc\x06[lobby] <alice> hello\n"
    assert bob.lines() == ["[lobby] <alice> hello"]
    # A line of nothing but commands is blank; IAC IAC is a data byte 255,
    # which is not UTF-8.
    alice.transport.clear()
    alice.send(b"\xff\xfb\x18\xff\xfa\x18\x00xterm\xff\xf0\r\n")
    assert alice.transport.value() == b"\xff\xfe\x18"
    # A command cut in two by the reads is still removed, and answered at
    # once, before the line ends.
    alice.transport.clear()
    alice.send(b"typing \xff")
    alice.send(b"\xfd")
    assert alice.transport.value() == b""
    alice.send(b"\x06")
    assert alice.transport.value() == b"\xff\xfc\x06"
    alice.send(b"on\r\n")
    assert bob.lines() == ["[lobby] <alice> typing on"]
    # An endless subnegotiation is dropped, not kept in memory.
    alice.transport.clear()
    alice.send(b"\xff\xfa" + b"x" * (wire.TELNET_MAX_PENDING + 10))
    assert alice.proto._telnet_pending == b""
    alice.send(b"\xff\xff\n")
    assert alice.transport.value() == b"!!! invalid-utf8: line is not valid UTF-8; it was rejected\n"
    assert bob.lines() == []


def test_a_line_without_newline_is_explained_once() -> None:
    """A blocking client's send("hello") with no newline: told after a while, once per such line."""
    chat = Harness(partial_line_notice=5)
    alice = chat.connect(nick="alice")
    alice.send(b"hello")
    chat.clock.advance(4.9)
    assert alice.lines() == []
    chat.clock.advance(0.1)
    assert alice.transport.value().endswith(
        b"*** partial: your line has no newline yet (5 bytes waiting); end each message with Enter (\\n)\n"
    )
    alice.lines()
    alice.send(b" world")
    chat.clock.advance(60)
    assert alice.lines() == [], "told once per line"
    alice.send(b"\n")
    assert alice.lines() == ["[lobby] <alice> hello world"]
    alice.send(b"again")
    chat.clock.advance(5)
    assert alice.lines()[-1].startswith("*** partial: your line has no newline yet (5 bytes")
    alice.drop()
    assert not chat.clock.getDelayedCalls()


def test_partial_line_notice_can_be_off() -> None:
    chat = Harness(partial_line_notice=None)
    alice = chat.connect(nick="alice")
    alice.send(b"hello")
    assert not chat.clock.getDelayedCalls()


def test_protocol_errors_are_logged_once_per_peer(caplog_events: list) -> None:
    chat = Harness(max_line=10)
    alice = chat.connect("192.0.2.50", nick="alice")
    for _ in range(5):
        alice.send(b"x" * 20 + b"\n")
        alice.send(b"\xff\xfe\n")
    logged = [e for e in caplog_events if e.get("log_format", "").startswith("chat: {peer}")]
    assert len(logged) == 1
    assert logged[0]["peer"].startswith("192.0.2.50:") and logged[0]["code"] == "line-too-long"
    chat.connect("192.0.2.51").send(b"y" * 20 + b"\n")  # another host: logged
    assert len([e for e in caplog_events if e.get("log_format", "").startswith("chat: {peer}")]) == 2


def test_counters_for_metrics() -> None:
    chat = Harness(flood_rate=1, flood_burst=1)
    alice = chat.connect(nick="alice")
    chat.clock.advance(10)
    alice.send(b"one\n")
    assert chat.factory.lines_received == 2  # /nick alice, one
    assert chat.factory.bytes_in == len(b"/nick alice\n") + len(b"one\n")
    alice.send(b"a\nb\nc\nd\n")  # flood: warned, then out
    assert chat.factory.disconnects == {"flood": 1}


def test_partial_line_notice_for_a_line_begun_in_the_same_read() -> None:
    """'first' (told), then '\\nsecond' in one read: 'second' is told about too."""
    chat = Harness(partial_line_notice=5)
    alice = chat.connect(nick="alice")
    alice.send(b"first")
    chat.clock.advance(5)
    alice.lines()
    alice.send(b"\nsecond")
    chat.clock.advance(5)
    assert alice.lines()[-1].startswith("*** partial: your line has no newline yet (6 bytes")


def test_whole_lines_waiting_their_turn_are_not_partial() -> None:
    chat = Harness(partial_line_notice=5, flood_rate=None)
    alice = chat.connect(nick="alice")
    alice.send(b"x\n" * 3000)  # more than one turn's worth
    assert alice.proto.pending_bytes == 0


# --- telnet commands while the client does not read ------------------------------------


def test_telnet_commands_wait_while_output_is_backed_up(chat: Harness) -> None:
    """
    A client that floods ``IAC DO x`` and never reads gets no answers queued
    while its output is backed up, and past the held bound it is not read.
    """
    user = chat.connect(nick="t")
    user.proto.pauseProducing()  # what the transport does when the client stops reading
    written = len(user.transport.value())
    flood = b"\xff\xfd\x01" * 10_000  # 30 KB: 10,000 replies if answered
    for _ in range(4):
        user.send(flood)
    assert len(user.transport.value()) == written  # nothing answered, nothing queued
    assert user.transport.producerState == "paused"  # past the bound: the socket is not read
    user.proto.resumeProducing()  # the client reads again: everything held is answered, in order
    assert user.transport.value()[written:] == b"\xff\xfc\x01" * 40_000
    user._read = len(user.transport.value())
    user.send(b"after\n")
    assert user.lines()[-1] == "[lobby] <t> after"


def test_metrics_counters_lines_delivered_and_disconnects_by_reason(chat: Harness) -> None:
    """What /metrics reads: lines in, lines delivered (once per recipient, counted per send), why users left."""
    alice, bob, carol = chat.connect(nick="alice"), chat.connect(nick="bob"), chat.connect(nick="carol")
    server = chat.factory.server
    received, delivered = chat.factory.lines_received, server.lines_delivered
    alice.say("hello")
    assert chat.factory.lines_received == received + 1
    assert server.lines_delivered == delivered + 3
    alice.say("/msg bob psst")
    assert server.lines_delivered == delivered + 5  # to bob and back to alice
    alice.say("/quit")
    bob.drop()
    carol.proto.close(None, "idle timeout")
    carol.drop()  # closed by the server already: counted once
    assert chat.factory.disconnects == {"quit": 1, "connection-lost": 1, "idle-timeout": 1}
