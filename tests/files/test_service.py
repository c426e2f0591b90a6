"""The upload service's descriptor: the token file, reloading limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from twisted.python import usage

from suite.files.service import read_token


def test_private_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"s3cret\n")
    path.chmod(0o600)
    assert read_token(str(path)) == b"s3cret"


@pytest.mark.parametrize("mode", [0o604, 0o644, 0o602, 0o666])
def test_token_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"s3cret\n")
    os.chmod(path, mode)
    with pytest.raises(usage.UsageError, match=f"can be read or written by every user \\(mode {mode:04o}\\).*chmod 600"):
        read_token(str(path))


def test_send_queue_and_stall_options_reach_the_factory(tmp_path: Path) -> None:
    from twisted.internet.task import Clock

    from suite import tap
    from suite.files.service import UPLOAD_SERVICE
    from suite.service import ServiceContext

    config = tmp_path / "netsuite.toml"
    config.write_text('upload-max-send-queue = "128K"\nupload-stall-timeout = 15\n')
    options = tap.Options()
    options.parseOptions(["--mode", "upload", "--config", str(config), "--upload-stall-timeout", "20",
                          "--storage", str(tmp_path / "store")])
    assert options["upload-max-send-queue"] == 128 << 10
    assert options["upload-stall-timeout"] == 20.0  # the command line wins
    values = {option.name: options[option.name] for option in UPLOAD_SERVICE.options}
    factory = UPLOAD_SERVICE.build(values, ServiceContext(Clock()))
    assert (factory.max_send_queue, factory.stall_timeout) == (128 << 10, 20.0)
    UPLOAD_SERVICE.reconfigure(factory, {**values, "upload-max-send-queue": 0, "upload-stall-timeout": 0})
    assert (factory.max_send_queue, factory.stall_timeout) == (None, None)
    assert factory.reply_timeout_flag == "--upload-idle-timeout"
