"""Chat text: names, sanitising, server line forms."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suite.chat import wire
from suite.chat.wire import ServerLine, parse_server_line


@pytest.mark.parametrize("name", ["a", "alice", "Bob_2", "x-y", "A" * 32, "123", "-", "_"])
def test_valid_names(name: str) -> None:
    assert wire.valid_name(name)


@pytest.mark.parametrize("name", ["", "A" * 33, "al ice", "élise", "a.b", "a/b", "a\n", "#room", "ａ"])
def test_invalid_names(name: str) -> None:
    assert not wire.valid_name(name)


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("plain text", "plain text"),
        ("tab\there", "tab here"),
        ("\x1b[2J\x1b[Hfake", "\ufffd[2J\ufffd[Hfake"),
        ("cr\rover", "cr\ufffdover"),
        ("bell\x07", "bell\ufffd"),
        ("c1\x9b31m", "c1\ufffd31m"),
        ("del\x7f", "del\ufffd"),
        ("nel\x85", "nel\ufffd"),
        ("ls\u2028ps\u2029", "ls\ufffdps\ufffd"),
        ("bidi\u202eevil\u2066", "bidi\ufffdevil\ufffd"),
        ("日本語 ünïcödé 🙂", "日本語 ünïcödé 🙂"),
    ],
)
def test_sanitize(raw: str, shown: str) -> None:
    assert wire.sanitize(raw) == shown


@given(st.text())
def test_sanitized_text_has_no_controls(text: str) -> None:
    clean = wire.sanitize(text)
    assert len(clean) == len(text)
    for char in clean:
        assert unicodedata.category(char) not in ("Cc", "Zl", "Zp")
        assert char not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


nicks = st.from_regex(r"\A[A-Za-z0-9_-]{1,32}\Z")
texts = st.text().map(wire.sanitize)


@given(room=nicks, nick=nicks, text=texts)
def test_message_lines_parse_back(room: str, nick: str, text: str) -> None:
    def parsed(line: bytes) -> ServerLine | None:
        assert line.endswith(b"\n") and line.count(b"\n") == 1 and b"\r" not in line
        return parse_server_line(line[:-1].decode())

    assert parsed(wire.message_line(room, nick, text)) == ServerLine("message", text, room=room, nick=nick)
    assert parsed(wire.action_line(room, nick, text)) == ServerLine("action", text, room=room, nick=nick)
    assert parsed(wire.private_line(nick, room, text)) == ServerLine("private", text, nick=nick, target=room)
    history = parsed(wire.history_line(room, wire.message_line(room, nick, text)))
    assert history == ServerLine("history", f"<{nick}> {text}", room=room)


def test_notices_and_errors_parse() -> None:
    assert parse_server_line("*** join: bob joined lobby") == ServerLine("notice", "bob joined lobby", code="join")
    assert parse_server_line("!!! nick-taken: the nickname bob is taken") == ServerLine(
        "error", "the nickname bob is taken", code="nick-taken"
    )
    assert parse_server_line("something else") is None
