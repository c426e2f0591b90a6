"""The slash-command table, typed against the user (no protocol needed): parsing, usage errors, dispatch."""

from __future__ import annotations

from suite.chat.commands import COMMANDS, run_command
from suite.chat.rooms import ChatServer


class RecordingUser:
    """The least a command needs of a user: a name, a room, somewhere to write, a way to leave."""

    nick = ""
    room = None

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.quit_reason: str | None = None

    def deliver(self, data: bytes) -> None:
        self.lines.extend(bytes(data).decode().splitlines())

    def enqueue(self, data: bytes) -> None:
        self.deliver(data)

    def flush(self) -> None:
        pass

    def quit(self, reason: str) -> None:
        self.quit_reason = reason


def connected() -> tuple[ChatServer, RecordingUser]:
    server = ChatServer(clock=lambda: 0.0)
    user = RecordingUser()
    server.connect(user)
    user.lines.clear()
    return server, user


def test_unknown_command_names_help() -> None:
    server, user = connected()
    run_command(server, user, "/dance wildly")
    assert user.lines == ["!!! unknown-command: unknown command /dance; /help lists commands"]


def test_missing_argument_gives_the_usage() -> None:
    server, user = connected()
    run_command(server, user, "/msg bob")
    assert user.lines == ["!!! missing-argument: usage: /msg NICK TEXT"]


def test_commands_are_case_insensitive_and_dispatch() -> None:
    server, user = connected()
    run_command(server, user, "/NICK alice")
    assert user.nick == "alice"
    run_command(server, user, "/quit see you")
    assert user.quit_reason == "see you"


def test_help_lists_every_command() -> None:
    server, user = connected()
    run_command(server, user, "/help")
    for command in COMMANDS.values():
        assert any(command.usage in line for line in user.lines)
