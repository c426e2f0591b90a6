"""File protocol text: names and command lines."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suite.files.wire import Command, FileError, check_name, parse_command

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
