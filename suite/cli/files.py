"""
``netsuite upload``, ``netsuite download`` and ``netsuite ls``: clients of
the file service, on the library in :mod:`suite.files.client`.

Progress goes to stderr: a tqdm bar when stderr is a terminal, JSON lines
with ``--progress json``, nothing with ``--quiet``.  Results go to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from suite.cli._net import INTERRUPTION, ClientError, WatchedEndpoint, client_endpoint, describe_failure
from suite.cli.address import HostPort, host_port_argument
from suite.files.client import Progress, RemoteError, TransferError, download, list_files, upload
from suite.files.wire import FileError, check_name, escape_name


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="HOST:PORT", type=host_port_argument, help="file server")
    parser.add_argument("--token-file", metavar="PATH", help="file holding the server's shared token")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--cafile", help="PEM certificate(s) to trust for --tls instead of the system store")
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S",
        help="seconds to wait for the connection, the greeting, each reply, and between bytes of a transfer "
             "(default 10)",
    )


def _progress_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress", choices=["auto", "bar", "json", "none"], default="auto",
        help="progress on stderr: a bar when it is a terminal (auto), always a bar, JSON lines, or none",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress and no result lines")


def add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path, help="files to upload")
    parser.add_argument("--name", help="name to store the file under (one FILE only; default: its own name)")
    parser.add_argument("--overwrite", action="store_true", help="replace a stored file of the same name")
    _progress_options(parser)


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("name", metavar="NAME", help="stored file to download")
    parser.add_argument("-o", "--output", type=Path, help="where to save it (default: NAME in this directory)")
    parser.add_argument("--force", action="store_true", help="replace an existing local file")
    _progress_options(parser)


def add_ls_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)


class ProgressReport:
    """Shows one transfer's progress the way the user asked."""

    def __init__(self, mode: str, quiet: bool, label: str) -> None:
        if quiet:
            mode = "none"
        elif mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "none"
        self.mode = mode
        self.label = label
        self._bar: Any = None
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.mode == "bar":
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                                 desc=self.label, file=sys.stderr, leave=False)
            self._bar.update(done - self._bar.n)
        elif self.mode == "json":
            now = time.monotonic()
            if done in (0, total) or now - self._last >= 0.2:
                self._last = now
                self._emit({"event": "progress", "file": self.label, "done": done, "total": total})

    def finish(self, result: dict[str, Any] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.mode == "json" and result is not None:
            self._emit({"event": "done", "file": self.label, **result})

    @staticmethod
    def _emit(event: dict[str, Any]) -> None:
        sys.stderr.write(json.dumps(event) + "\n")
        sys.stderr.flush()


def _read_token(args: argparse.Namespace) -> str | None:
    if not args.token_file:
        return None
    try:
        return Path(args.token_file).read_text().strip()
    except OSError as e:
        raise ClientError(f"cannot read token file {args.token_file}: {e.strerror}") from None


def _explain(e: BaseException, target: HostPort, what: str, endpoint: WatchedEndpoint | None = None) -> str:
    timed_out = endpoint.explain() if endpoint is not None else None
    if timed_out is not None:
        return f"{what}: {timed_out}"
    if isinstance(e, RemoteError):
        return f"{what}: server refused: {e.code}: {e.message}"
    if isinstance(e, TransferError | FileError):
        return f"{what}: {e}"
    return f"{what}: {describe_failure(e, target)}"


def _endpoint(reactor: Any, args: argparse.Namespace) -> WatchedEndpoint:
    endpoint = client_endpoint(reactor, args.address, tls=args.tls, cafile=args.cafile, timeout=args.timeout)
    return WatchedEndpoint(endpoint, reactor, args.timeout, args.address)


async def run_upload(reactor: Any, args: argparse.Namespace) -> None:
    """Run ``netsuite upload``."""
    if args.name is not None and len(args.files) > 1:
        raise ClientError("--name needs exactly one FILE")
    token = _read_token(args)
    failures = 0
    for path in args.files:
        name = args.name if args.name is not None else path.name
        endpoint: WatchedEndpoint | None = None
        try:
            check_name(name)
            if not path.is_file():
                raise TransferError(f"{path} is not a readable file")
            report = ProgressReport(args.progress, args.quiet, name)
            endpoint = _endpoint(reactor, args)
            try:
                stored = await upload(endpoint, path, name, overwrite=args.overwrite, token=token, progress=report)
            finally:
                report.finish()
        except Exception as e:
            if INTERRUPTION.happened:
                raise  # Ctrl-C: no more files, no more messages
            failures += 1
            print(f"netsuite upload: {_explain(e, args.address, str(path), endpoint)}", file=sys.stderr)
            continue
        report.finish({"size": stored.size, "sha256": stored.sha256})
        if not args.quiet:
            print(f"stored {stored.name} {stored.size} bytes sha256 {stored.sha256}")
    if failures:
        raise SystemExit(1)


async def run_download(reactor: Any, args: argparse.Namespace) -> None:
    """Run ``netsuite download``."""
    token = _read_token(args)
    try:
        check_name(args.name)
    except FileError as e:
        raise ClientError(str(e)) from None
    destination = args.output if args.output is not None else Path(args.name)
    if destination.is_dir():
        destination = destination / args.name
    report: Progress = ProgressReport(args.progress, args.quiet, args.name)
    endpoint = _endpoint(reactor, args)
    try:
        stored = await download(endpoint, args.name, destination, force=args.force, token=token, progress=report)
    except Exception as e:
        report.finish()  # type: ignore[attr-defined]
        raise ClientError(_explain(e, args.address, args.name, endpoint)) from None
    report.finish({"size": stored.size, "sha256": stored.sha256})  # type: ignore[attr-defined]
    if not args.quiet:
        print(f"saved {destination} {stored.size} bytes sha256 {stored.sha256}")


async def run_ls(reactor: Any, args: argparse.Namespace) -> None:
    """Run ``netsuite ls``."""
    endpoint = _endpoint(reactor, args)
    try:
        files = await list_files(endpoint, token=_read_token(args))
    except ClientError:
        raise
    except RemoteError as e:
        raise ClientError(f"server refused: {e.code}: {e.message}") from None
    except Exception as e:
        raise ClientError(endpoint.explain() or describe_failure(e, args.address)) from None
    for stored in files:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stored.mtime))
        print(f"{stored.size:>14}  {when}  {stored.sha256}  {escape_name(stored.name)}")
