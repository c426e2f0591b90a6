"""The storage index: running total, journal, compaction off the reactor thread."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twisted.internet import defer

from suite.files.index import Entry, Index, read_journal


class Recorder:
    """A runner that runs inline and remembers what it ran, with what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        self.calls.append((f.__name__, args))
        return defer.maybeDeferred(f, *args)


def test_total_and_journal(tmp_path: Path) -> None:
    run = Recorder()
    index = Index(str(tmp_path / "journal"), run)
    st = os.stat(tmp_path)
    index.set("a", 10, "1" * 64, st)
    index.set("b", 5, "2" * 64, st)
    index.set("a", 3, "3" * 64, st)
    index.drop("b")
    assert index.total == 3
    entries, lines = read_journal(str(tmp_path / "journal"))
    assert entries == {"a": (3, "3" * 64, st.st_mtime_ns, st.st_ino)} and lines == 4


def test_compaction_formats_lines_in_the_thread(tmp_path: Path) -> None:
    run = Recorder()
    index = Index(str(tmp_path / "journal"), run)
    st = os.stat(tmp_path)
    index.load([(f"f{i}", Entry(1, "0" * 64, st.st_mtime_ns, st.st_ino)) for i in range(3)], journal_lines=0)
    (name, (snapshot,)), = [c for c in run.calls if c[0] == "_rewrite"]
    assert all(isinstance(item, tuple) for item in snapshot), "the reactor thread only copied the entries"
    assert read_journal(str(tmp_path / "journal"))[0].keys() == {"f0", "f1", "f2"}
    assert oct(os.stat(tmp_path / "journal").st_mode & 0o777) == oct(0o600)
