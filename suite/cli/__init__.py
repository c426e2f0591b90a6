"""
The ``netsuite`` console command: clients for the netsuite services.

Every subcommand runs on the reactor (``task.react``); failures print one
``netsuite COMMAND: ...`` line on stderr and exit with status 1 (2 for
usage errors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from suite.cli import chat, echo, udpchat
from suite.cli._net import ClientError

__all__ = ["build_parser", "main"]

_Run = Callable[[Any, argparse.Namespace], Awaitable[None]]

#: name -> (module with add_arguments and run, help, description)
_COMMANDS: dict[str, tuple[Any, str, str]] = {
    "echo": (
        echo,
        "send lines to a TCP or UDP echo server and print the replies",
        "Send each MESSAGE (or each stdin line) and print each echoed reply.",
    ),
    "chat": (
        chat,
        "talk on a netsuite chat server",
        "Full-duplex chat client: lines you type are sent, server lines are printed as they come. "
        "With stdin from a pipe, sends its lines and leaves at end of input.",
    ),
    "udp-chat": (
        udpchat,
        "chat with a peer over UDP, one datagram per line",
        "Every line typed is sent to --peer as one datagram; every datagram received is printed "
        "with its sender's address.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``netsuite`` command."""
    parser = argparse.ArgumentParser(prog="netsuite", description="Clients for the netsuite services.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text, description) in _COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=help_text, description=description))
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``netsuite`` command; exits the process."""
    from twisted.internet import defer, task

    args = build_parser().parse_args(argv)
    run: _Run = _COMMANDS[args.command][0].run

    async def _main(reactor: Any) -> None:
        try:
            await run(reactor, args)
        except ClientError as e:
            print(f"netsuite {args.command}: {e}", file=sys.stderr)
            raise SystemExit(1) from None

    task.react(lambda reactor: defer.Deferred.fromCoroutine(_main(reactor)))
