"""
The ``netsuite`` console command: clients for the netsuite services.

Every subcommand runs on the reactor (``task.react``); failures print one
``netsuite: ...`` line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from suite.cli import echo
from suite.cli._net import ClientError
from suite.cli.address import AddressError, parse_host_port

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``netsuite`` command."""
    parser = argparse.ArgumentParser(prog="netsuite", description="Clients for the netsuite services.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    echo.add_arguments(
        commands.add_parser(
            "echo",
            help="send lines to a TCP or UDP echo server and print the replies",
            description="Send each MESSAGE (or each stdin line) and print each echoed reply.",
        )
    )
    return parser


_COMMANDS = {"echo": echo.run}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``netsuite`` command; exits the process."""
    from twisted.internet import defer, task

    args = build_parser().parse_args(argv)
    try:
        target = parse_host_port(args.address)
    except AddressError as e:
        print(f"netsuite {args.command}: {e}", file=sys.stderr)
        sys.exit(2)

    async def _main(reactor: Any) -> None:
        try:
            await _COMMANDS[args.command](reactor, args, target)
        except ClientError as e:
            print(f"netsuite {args.command}: {e}", file=sys.stderr)
            raise SystemExit(1) from None

    task.react(lambda reactor: defer.Deferred.fromCoroutine(_main(reactor)))
