"""
The ``netsuite`` console command: clients for the netsuite services.

Every subcommand runs on the reactor (``task.react``); failures print one
``netsuite COMMAND: ...`` line on stderr and exit with status 1 (2 for
usage errors).  Ctrl-C prints ``netsuite COMMAND: interrupted`` and exits
with status 130, the shell's convention for SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from suite.cli import chat, echo, files, udpchat
from suite.cli._net import INTERRUPTION, ClientError

__all__ = ["build_parser", "main"]

_Run = Callable[[Any, argparse.Namespace], Awaitable[None]]

#: name -> (add_arguments, run, help, description)
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], _Run, str, str]] = {
    "echo": (
        echo.add_arguments, echo.run,
        "send lines to a TCP or UDP echo server and print the replies",
        "Send each MESSAGE (or each stdin line) and print each echoed reply.",
    ),
    "chat": (
        chat.add_arguments, chat.run,
        "talk on a netsuite chat server",
        "Full-duplex chat client: lines you type are sent, server lines are printed as they come. "
        "With stdin from a pipe, sends its lines and leaves at end of input.",
    ),
    "udp-chat": (
        udpchat.add_arguments, udpchat.run,
        "chat with a peer over UDP, one datagram per line",
        "Every line typed is sent to --peer as one datagram; every datagram received is printed "
        "with its sender's address.",
    ),
    "upload": (
        files.add_upload_arguments, files.run_upload,
        "upload files to a netsuite file server",
        "Upload each FILE, resuming when the server holds part of it; exits 0 only when every "
        "file was stored and its sha256 matched.",
    ),
    "download": (
        files.add_download_arguments, files.run_download,
        "download a file from a netsuite file server",
        "Download NAME through a temporary file that is renamed once its sha256 matched; resumes "
        "an interrupted download; never replaces a local file without --force.",
    ),
    "ls": (
        files.add_ls_arguments, files.run_ls,
        "list the files on a netsuite file server",
        "Print size, modification time (UTC), sha256 and name of every stored file.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``netsuite`` command."""
    parser = argparse.ArgumentParser(prog="netsuite", description="Clients for the netsuite services.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _, help_text, description) in _COMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_text, description=description))
    return parser


#: Exit status after Ctrl-C: 128 + SIGINT, as shells report it.
INTERRUPTED = 128 + signal.SIGINT


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``netsuite`` command; exits the process."""
    from twisted.internet import defer, task

    args = build_parser().parse_args(argv)
    run = _COMMANDS[args.command][1]

    async def _main(reactor: Any) -> None:
        try:
            await run(reactor, args)
        except BaseException as e:
            if INTERRUPTION.happened:
                raise SystemExit(INTERRUPTED) from None
            if isinstance(e, ClientError):
                print(f"netsuite {args.command}: {e}", file=sys.stderr)
                raise SystemExit(1) from None
            raise

    def start(reactor: Any) -> defer.Deferred[None]:
        def interrupt() -> None:
            if INTERRUPTION.happened:
                return
            INTERRUPTION.happened = True
            sys.stderr.write(f"netsuite {args.command}: interrupted\n")
            sys.stderr.flush()
            d.cancel()  # the awaited step fails with CancelledError; finally blocks run
            if not d.called and reactor.running:
                reactor.stop()  # a step that does not cancel is cut off by the shutdown

        def on_sigint(signum: int, frame: Any) -> None:
            reactor.callFromThread(interrupt)  # runs once the reactor turns, even before it started

        # Now (a command's first steps run before the reactor starts) and
        # again after startup, which installs the reactor's own handler.
        signal.signal(signal.SIGINT, on_sigint)
        reactor.callWhenRunning(signal.signal, signal.SIGINT, on_sigint)
        d = defer.Deferred.fromCoroutine(_main(reactor))
        return d

    try:
        task.react(start)
    except SystemExit:
        if INTERRUPTION.happened:
            raise SystemExit(INTERRUPTED) from None
        raise
