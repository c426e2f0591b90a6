"""Chat text: names, sanitising, server line forms."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suite.chat import wire
from suite.chat.wire import ServerLine, parse_server_line


@pytest.mark.parametrize(
    "name", ["a", "alice", "Bob_2", "x-y", "A" * 32, "123", "-", "_", "élise", "小明", "大厅", "Ölüm", "Дима", "ａ", "नमस्ते"]
)
def test_valid_names(name: str) -> None:
    assert wire.valid_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "A" * 33, "al ice", "a.b", "a/b", "a\n", "#room", "a\u200bb", "a\u00adb", "a\u202eb", "a\u2066b", "🙂", "a\u3000b", "a!b"],
)
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


@pytest.mark.parametrize(
    "data, text, replies, pending",
    [
        (b"plain", b"plain", b"", b""),
        ("caf\u00e9".encode(), "caf\u00e9".encode(), b"", b""),
        (b"a\xff\xf4b", b"ab", b"", b""),  # IP: interrupt process
        (b"\xff\xfd\x06x", b"x", b"\xff\xfc\x06", b""),  # DO TIMING-MARK -> WONT
        (b"\xff\xfb\x1fx", b"x", b"\xff\xfe\x1f", b""),  # WILL NAWS -> DONT
        (b"\xff\xfc\x01\xff\xfe\x01x", b"x", b"", b""),  # WONT/DONT need no answer
        (b"\xff\xfa\x18\x00xterm\xff\xf0x", b"x", b"", b""),  # subnegotiation
        (b"a\xff\xffb", b"a\xffb", b"", b""),  # escaped data byte 255
        # Cut off by the end of a read: kept for the next one.
        (b"x\xff", b"x", b"", b"\xff"),
        (b"x\xff\xfd", b"x", b"", b"\xff\xfd"),
        (b"x\xff\xfa\x18unfinished", b"x", b"", b"\xff\xfa\x18unfinished"),
    ],
)
def test_strip_telnet(data: bytes, text: bytes, replies: bytes, pending: bytes) -> None:
    assert wire.strip_telnet(data) == (text, replies, pending)


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=64))
def test_strip_telnet_is_the_same_however_reads_split(data: bytes, cut: int) -> None:
    whole = wire.strip_telnet(data)
    first = wire.strip_telnet(data[:cut])
    second = wire.strip_telnet(first[2] + data[cut:])
    assert (first[0] + second[0], first[1] + second[1], second[2]) == whole
