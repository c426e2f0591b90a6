"""The option tables in the docs match the service descriptors."""

from __future__ import annotations

from suite.optiondocs import DOCS, _BLOCK, render
from suite.registry import SERVICES
from tests.helpers import ROOT


def test_tables_are_up_to_date() -> None:
    stale = [
        f"{page} ({name})"
        for page in DOCS
        for _, name, body, _ in _BLOCK.findall((ROOT / page).read_text(encoding="utf-8"))
        if body != render(name)
    ]
    assert not stale, f"option tables out of date: {stale}; run: .venv/bin/python -m suite.optiondocs"


def test_every_service_has_a_table_in_running_md() -> None:
    text = (ROOT / "docs/running.md").read_text(encoding="utf-8")
    missing = [s.name for s in SERVICES if f"<!-- options:{s.name} -->" not in text]
    assert not missing, f"docs/running.md has no options table for {missing}"
    assert "<!-- options:global -->" in text
    assert "<!-- options:all -->" in (ROOT / "docs/operations.md").read_text(encoding="utf-8")


def test_every_service_has_its_docs_page() -> None:
    for service in SERVICES:
        assert service.docs and (ROOT / service.docs).is_file(), f"{service.name}: no docs page {service.docs!r}"
