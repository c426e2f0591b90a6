"""Chat state: names in any script, confusable names, topics, quiet joins (in memory)."""

from __future__ import annotations

import pytest
import pytest_twisted

from suite.chat import ChatServer, wire
from suite.chat.names import NAME_RULE, InvalidName, check_name, name_key, skeletons
from tests.chat.test_protocol import Harness, chat  # noqa: F401 - the fixture
from tests.helpers import spawn


class Member:
    """A ChatUser that keeps what it is given."""

    def __init__(self, tracks_members: bool = False) -> None:
        self.nick = ""
        self.room = None
        self.tracks_members = tracks_members
        self.got: list[bytes] = []

    def deliver(self, data: bytes) -> None:
        self.got.append(data)

    enqueue = deliver

    def flush(self) -> None:
        pass

    def lines(self) -> list[str]:
        got, self.got = self.got, []
        return [line.decode().rstrip("\n") for line in got]


@pytest.mark.parametrize(
    "a, b", [("Alice", "aLICE"), ("ＡＬＩＣＥ", "alice"), ("Дима", "дима"), ("ÖLÜM", "ölüm"), ("e\u0301lise", "élise")]
)
def test_names_compare_case_and_width_insensitively(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


def test_shown_form_keeps_case_and_narrows_width() -> None:
    assert check_name("ＡＬＩＣＥ") == "ALICE"
    assert check_name("小明") == "小明"


@pytest.mark.parametrize(
    "bad, why",
    [
        ("a b", "U+0020 SPACE"),
        ("a\u200bb", "U+200B ZERO WIDTH SPACE"),
        ("a\u202eb", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("a\x07", "U+0007"),
        ("🙂", "U+1F642 SLIGHTLY SMILING FACE"),
        ("", "cannot be empty"),
        ("x" * 33, "at most 32 characters"),
    ],
)
def test_invalid_names_say_why(bad: str, why: str) -> None:
    with pytest.raises(InvalidName, match=why.replace("+", r"\+")):
        check_name(bad)


@pytest.mark.parametrize("a, b", [("alice", "аlice"), ("lan", "Ian"), ("paypal", "pаypаl"), ("bob0", "bobO")])
def test_confusable_names_share_a_skeleton(a: str, b: str) -> None:
    assert skeletons(a) & skeletons(b)


def test_unrelated_names_do_not() -> None:
    assert not skeletons("alice") & skeletons("bob")
    assert not skeletons("小明") & skeletons("小红")


def test_nick_in_any_script_and_room_in_any_script(chat: Harness) -> None:
    xm = chat.connect(nick="小明")
    assert xm.proto.nick == "小明"
    xm.say("/join 大厅")
    assert xm.lines() == ["*** join: 小明 joined 大厅"]
    xm.say("你好")
    assert xm.lines() == ["[大厅] <小明> 你好"]
    assert wire.parse_server_line("[大厅] <小明> 你好") == wire.ServerLine("message", "你好", room="大厅", nick="小明")


def test_confusable_nick_refused_while_holder_is_here(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    mallory = chat.connect(nick="mallory")
    mallory.say("/nick аlice")  # Cyrillic a
    (line,) = mallory.lines()
    assert line == "!!! nick-taken: the nickname аlice looks like alice, who is here"
    alice.drop()
    mallory.say("/nick аlice")
    assert mallory.proto.nick == "аlice"


def test_full_width_nick_is_the_same_nick(chat: Harness) -> None:
    chat.connect(nick="alice")
    bob = chat.connect(nick="bob")
    bob.say("/nick ＡＬＩＣＥ")
    assert bob.lines() == ["!!! nick-taken: the nickname ＡＬＩＣＥ is taken"]
    bob.say("/msg ＡＬＩＣＥ hi")
    assert bob.lines() == ["[private] <bob -> alice> hi"]


def test_error_says_what_is_allowed(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.say("/join a.b")
    (line,) = alice.lines()
    assert line.startswith("!!! room-invalid: 'a.b' is not a valid room name: '.' (U+002E FULL STOP) is not allowed")
    assert line.endswith(NAME_RULE)


def test_confusable_room_refused(chat: Harness) -> None:
    alice = chat.connect(nick="alice")
    alice.say("/join 1obby")
    assert alice.lines() == ["!!! room-invalid: the room name 1obby looks like lobby, which exists"]


def test_topic_set_shown_and_replayed_on_join() -> None:
    chat = Harness(server=ChatServer(clock=lambda: 1000.0))
    alice = chat.connect(nick="alice")
    alice.say("/topic")
    assert alice.lines() == ["*** topic: lobby has no topic"]
    bob = chat.connect(nick="bob")
    alice.lines()
    bob.say("/topic release \x1b[2J friday")
    expected = "*** topic: bob set the topic of lobby: release \ufffd[2J friday"
    assert alice.lines() == [expected] and bob.lines() == [expected]
    room = chat.factory.server.find_room("#LOBBY")
    assert (room.topic_by, room.topic_at) == ("bob", 1000.0)
    carol = chat.connect()
    assert "*** topic: topic of lobby: release \ufffd[2J friday (set by bob)" in carol.proto.transport.value().decode()
    bob.lines()
    bob.say("/topic " + "x" * 301)
    assert bob.lines() == ["!!! topic-too-long: a topic has at most 300 characters, not 301"]


def test_quiet_joins_tell_only_the_joiner_and_trackers() -> None:
    server = ChatServer(quiet_joins=2)
    quiet, tracker = Member(), Member(tracks_members=True)
    server.connect(quiet, "quiet")
    server.connect(tracker, "tracker")
    quiet.lines(), tracker.lines()
    third = Member()
    server.connect(third, "third")
    assert quiet.lines() == []
    assert tracker.lines() == ["*** join: third joined lobby"]
    assert third.lines()[-1] == "*** join: third joined lobby"
    server.disconnect(third, "quit")
    assert quiet.lines() == [] and tracker.lines() == ["*** leave: third left lobby (quit)"]
    server.disconnect(tracker, "quit")  # two left: announced again
    assert quiet.lines() == ["*** leave: tracker left lobby (quit)"]


def test_lines_say_what_they_mean() -> None:
    server = ChatServer()
    alice = Member()
    server.connect(alice, "alice")
    server.rename(alice, "alicia")
    server.part(alice)
    server.say(alice, "nobody hears")
    lines = alice.got
    join, nick, error = lines[1].what, lines[2].what, lines[3].what
    assert (join.code, join.room, join.nick) == ("join", "lobby", "alice")
    assert (nick.code, nick.nick, nick.target) == ("nick", "alice", "alicia")
    assert (error.kind, error.code) == ("error", "not-in-room")


@pytest_twisted.ensureDeferred
async def test_chat_command_with_a_chinese_nick(chat_port: int) -> None:
    run = spawn(["netsuite", "chat", f"127.0.0.1:{chat_port}", "--nick", "小明"], stdin="/join 大厅\n你好\n".encode())
    assert await run.ended == 0, run.err
    out = run.out.decode()
    assert "*** nick: " in out and " is now 小明" in out
    assert "[大厅] <小明> 你好" in out
