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
