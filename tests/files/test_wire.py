"""File protocol text: names, command lines and replies, both directions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suite.files.wire import (
    Command, FileError, WireError, check_name, escape_name, format_command, parse_command, parse_reply,
)

SHA = "ab" * 32


@pytest.mark.parametrize(
    "name", ["a", "photo.jpg", "my holiday photo.jpg", "ünïcödé – 日本語.txt", "x" * 255, "a..b", "-dash", "é" * 127]
)
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        (".", "reserved"),
        ("..", "reserved"),
        (".hidden", "reserved"),
        ("a/b", "'/'"),
        ("../etc/passwd", "reserved"),
        ("a\\b", "'\\\\\\\\'"),
        ("nul\x00", "'\\\\x00'"),
        ("tab\there", "'\\\\t'"),
        ("new\nline", "'\\\\n'"),
        ("esc\x1b", "'\\\\x1b'"),
        ("del\x7f", "'\\\\x7f'"),
        ("c1\x85", "'\\\\x85'"),
        ("rtl\u202egpj.exe", "U\\+202E"),
        ("isolate\u2066x", "U\\+2066"),
        ("lrm\u200ex", "U\\+200E"),
        ("zero\u200bwidth", "U\\+200B"),
        ("bom\ufeffx", "U\\+FEFF"),
        ("line\u2028sep", "U\\+2028"),
        ("para\u2029sep", "U\\+2029"),
        ("x" * 256, "longer than 255 bytes"),
        ("é" * 128, "longer than 255 bytes"),
    ],
)
def test_bad_names(name: str, why: str) -> None:
    with pytest.raises(FileError, match=why) as raised:
        check_name(name)
    assert raised.value.code == "bad-name"


@pytest.mark.parametrize(
    "line, command",
    [
        ("PUT 10 a file.txt", Command("PUT", name="a file.txt", size=10)),
        ("put 0 empty", Command("PUT", name="empty", size=0)),
        ("PUT 5 123 numbers first", Command("PUT", name="123 numbers first", size=5)),
        (f"PUT sha256={SHA} overwrite resume 7 x",
         Command("PUT", name="x", size=7, sha256=SHA, overwrite=True, resume=True,
                 options=frozenset({"overwrite", "resume"}))),
        (f"PUT sha256={SHA.upper()} 7 x", Command("PUT", name="x", size=7, sha256=SHA)),
        ("GET 0 a b", Command("GET", name="a b", offset=0)),
        ("GET 123 x", Command("GET", name="x", offset=123)),
        ("STAT my file", Command("STAT", name="my file")),
        ("LIST", Command("LIST")),
        ("DONE", Command("DONE")),
        ("QUIT", Command("QUIT")),
        ("AUTH s3cret token", Command("AUTH", token="s3cret token")),
    ],
)
def test_parse(line: str, command: Command) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    "line, code",
    [
        ("", "bad-command"),
        ("HELLO", "bad-command"),
        ("PUT", "bad-size"),
        ("PUT x y", "bad-command"),
        ("PUT -5 x", "bad-command"),
        ("PUT 99999999999999999999 x", "bad-size"),
        ("PUT 5", "bad-name"),
        ("PUT 5 .hidden", "bad-name"),
        ("PUT 5 a/b", "bad-name"),
        ("PUT sha256=xyz 5 a", "bad-command"),
        ("PUT resume 5 a", "bad-command"),
        ("GET x name", "bad-offset"),
        ("GET 0", "bad-name"),
        ("LIST everything", "bad-command"),
        ("STAT ../x", "bad-name"),
    ],
)
def test_parse_errors(line: str, code: str) -> None:
    with pytest.raises(FileError) as raised:
        parse_command(line)
    assert raised.value.code == code
    assert raised.value.line().startswith(f"ERR {code} ".encode())
    assert raised.value.line().count(b"\n") == 1


@given(st.text(max_size=80))
def test_parser_only_raises_file_errors(line: str) -> None:
    try:
        command = parse_command(line)
    except FileError as e:
        assert e.code and e.message
    else:
        if command.name:
            check_name(command.name)


@given(size=st.integers(0, 2**62), name=st.text(min_size=1, max_size=50))
def test_put_round_trip(size: int, name: str) -> None:
    try:
        check_name(name)
    except FileError:
        return
    assert parse_command(f"PUT {size} {name}") == Command("PUT", name=name, size=size)


@pytest.mark.parametrize(
    "name, shown",
    [
        ("holiday photo é.jpg", "holiday photo é.jpg"),
        ("rtl\u202egpj.exe", "rtl\\u202egpj.exe"),
        ("esc\x1b[31mred", "esc\\x1b[31mred"),
        ("back\\slash", "back\\\\slash"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("line\u2028sep", "line\\u2028sep"),
        ("tag\U000e0041", "tag\\U000e0041"),
    ],
)
def test_escape_name(name: str, shown: str) -> None:
    assert escape_name(name) == shown


@pytest.mark.parametrize(
    "text",
    [
        "NETSUITE-FILES 1", "NETSUITE-FILES 1 auth-required", "AUTHORIZED", "BYE", "READY 7",
        "STORED 3 " + "a" * 64 + " my file", "DATA 10 " + "b" * 64 + " 4", "FILES 2",
        "FILE 3 " + "c" * 64 + " 2026-11-22T03:11:00Z a name", "ERR not-found there is no file called x",
    ],
)
def test_every_reply_parses_and_formats_back(text: str) -> None:
    assert parse_reply(text).line() == text.encode() + b"\n"


@pytest.mark.parametrize("text", ["READY x", "STORED 3 nothex name", "DATA 1 2", "HELLO", "FILES -1", "FILE 1 2 3"])
def test_malformed_replies(text: str) -> None:
    with pytest.raises(WireError):
        parse_reply(text)


@pytest.mark.parametrize(
    "command",
    [
        Command("PUT", name="a b", size=3, sha256="d" * 64, overwrite=True, resume=True),
        Command("PUT", name="x", size=0),
        Command("GET", name="x y", offset=5),
        Command("STAT", name="é"),
        Command("LIST"), Command("DONE"), Command("QUIT"),
    ],
)
def test_commands_format_and_parse_back(command: Command) -> None:
    parsed = parse_command(format_command(command).decode().rstrip("\n"))
    assert (parsed.verb, parsed.name, parsed.size, parsed.offset, parsed.sha256, parsed.overwrite, parsed.resume) == (
        command.verb, command.name, command.size, command.offset, command.sha256, command.overwrite, command.resume,
    )
