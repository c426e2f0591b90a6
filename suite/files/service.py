"""The file service's descriptor: ``--mode upload`` and its options."""

from __future__ import annotations

import os
import stat
from typing import Any

from twisted.python import usage

from suite.files.factory import FileFactory
from suite.files.storage import Storage
from suite.service import Config, Option, ServiceContext, ServiceDescriptor, non_negative, size

__all__ = ["STORAGE_OPTIONS", "UPLOAD_SERVICE", "read_token", "shared_storage"]


def token_file(path: str) -> str:
    """A readable, non-empty token file (checked when the options are read)."""
    read_token(path)
    return path


def read_token(path: str | None) -> bytes | None:
    """
    The token in ``path`` (surrounding whitespace removed), or ``None`` for
    no file.  A file that others may read or write is refused: anyone on
    the machine could use or change the token.
    """
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & 0o006:
                raise usage.UsageError(
                    f"{path} can be read or written by every user (mode {stat.S_IMODE(mode):04o}); "
                    f"make it private: chmod 600 {path}"
                )
            token = f.read().strip()
    except OSError as e:
        raise usage.UsageError(f"{e.strerror}: {path}") from None
    if not token:
        raise usage.UsageError(f"{path} is empty")
    return token


def shared_storage(config: Config, context: ServiceContext) -> Storage:
    """The process's one :class:`Storage`, shared by every file front (line protocol, HTTP)."""
    return context.shared("storage", lambda: Storage(
        config["storage"],
        max_file_size=config["max-file-size"] or None,
        quota=config["quota"] or None,
        min_free=config["min-free"],
        resume_ttl=config["resume-ttl"],
        umask=config["umask"],
        clock=context.reactor,
    ))


def umask(value: str) -> int:
    """An octal file mode mask such as 077 or 027."""
    try:
        mask = int(str(value), 8)
    except ValueError:
        raise usage.UsageError(f"expected an octal mask such as 077, got {value!r}") from None
    if not 0 <= mask <= 0o777:
        raise usage.UsageError(f"expected an octal mask 000-777, got {value!r}")
    return mask


def _limits(config: Config) -> dict[str, Any]:
    return {
        "first_command_timeout": config["upload-first-command-timeout"] or None,
        "max_transfers": config["max-transfers"] or None,
        "idle_timeout": config["upload-idle-timeout"] or None,
        "stall_timeout": config["upload-stall-timeout"] or None,
        "max_send_queue": config["upload-max-send-queue"] or None,
        "transfer_timeout": config["transfer-timeout"] or None,
    }


def _build(config: Config, context: ServiceContext) -> FileFactory:
    return FileFactory(
        shared_storage(config, context),
        token=read_token(config["token-file"]),
        max_connections=config["upload-max-connections"] or None,
        max_per_ip=config["upload-max-per-ip"] or None,
        auth_delay=config["auth-delay"],
        reactor=context.reactor,
        **_limits(config),
    )


def _reconfigure(factory: FileFactory, config: Config) -> None:
    for name, value in _limits(config).items():
        setattr(factory, name, value)
    factory.token = read_token(config["token-file"])
    factory.auth_delay = config["auth-delay"]
    factory.admission.configure(
        max_connections=config["upload-max-connections"] or None,
        max_per_ip=config["upload-max-per-ip"] or None,
        exempt=factory.admission.exempt,
    )


#: The options of the file storage, shared by every front that serves it.
STORAGE_OPTIONS: tuple[Option, ...] = (
    Option("storage", "netsuite-files",
           "Directory the file services store files in (created if missing).", reloadable=False),
    Option("max-file-size", Storage.DEFAULT_MAX_FILE_SIZE, "Largest upload; 0 = no limit.", size, reloadable=False),
    Option("quota", 0, "Most bytes stored in total; 0 = no quota.", size, reloadable=False),
    Option("min-free", Storage.DEFAULT_MIN_FREE, "Free disk space every upload must leave.", size, reloadable=False),
    Option("resume-ttl", Storage.DEFAULT_RESUME_TTL,
           "Seconds an interrupted upload's data is kept for resuming.", non_negative(float), reloadable=False),
    Option("umask", Storage.DEFAULT_UMASK, "Mask of the stored files' and the index's modes (octal).",
           umask, reloadable=False),
    Option("token-file", None, "File holding the shared token clients must present (AUTH).", token_file),
)

UPLOAD_SERVICE = ServiceDescriptor(
    name="upload",
    summary="file upload and download",
    default_listen="tcp:8021:interface=127.0.0.1",
    build=_build,
    reconfigure=_reconfigure,
    docs="docs/protocols/files.md",
    options=(
        *STORAGE_OPTIONS,
        Option("upload-max-connections", FileFactory.DEFAULT_MAX_CONNECTIONS,
               "Concurrent upload-service connections; 0 = no cap.", non_negative(int)),
        Option("upload-max-per-ip", FileFactory.DEFAULT_MAX_PER_IP,
               "Concurrent upload-service connections per client IP; 0 = no cap.", non_negative(int)),
        Option("upload-first-command-timeout", FileFactory.DEFAULT_FIRST_COMMAND_TIMEOUT,
               "Seconds a new upload-service connection has to send its first command; 0 = never.",
               non_negative(float)),
        Option("auth-delay", FileFactory.DEFAULT_AUTH_DELAY,
               "Seconds a wrong AUTH token waits for its answer (doubling per failure from a host).",
               non_negative(float)),
        Option("max-transfers", FileFactory.DEFAULT_MAX_TRANSFERS,
               "Concurrent uploads and downloads; 0 = no cap.", non_negative(int)),
        Option("upload-idle-timeout", FileFactory.DEFAULT_IDLE_TIMEOUT,
               "Seconds an upload-service connection may wait between commands; 0 = never.", non_negative(float)),
        Option("upload-stall-timeout", FileFactory.DEFAULT_STALL_TIMEOUT,
               "Seconds an upload-service client may leave its replies unread before it is disconnected; "
               "0 = the idle timeout.", non_negative(float)),
        Option("upload-max-send-queue", FileFactory.DEFAULT_MAX_SEND_QUEUE,
               "Bytes held for an upload-service client that reads no replies (unsent replies and unrun "
               "commands) before it is disconnected; 0 = no cap.", size),
        Option("transfer-timeout", FileFactory.DEFAULT_TRANSFER_TIMEOUT,
               "Seconds a transfer may make no progress; 0 = never.", non_negative(float)),
    ),
)
