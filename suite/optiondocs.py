"""
The option tables of the docs, generated from the service descriptors.

``docs/running.md`` and ``docs/operations.md`` hold tables between markers
(``<!-- options:NAME -->`` ... ``<!-- /options -->``, where NAME is a
service, ``global`` or ``all``).  ``python -m suite.optiondocs`` rewrites
them; ``tests/test_optiondocs.py`` fails while any is out of date, so the
tables cannot drift from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from suite.service import Option

__all__ = ["DOCS", "render", "update"]

#: The pages with generated tables, relative to the project root.
DOCS = ("docs/running.md", "docs/operations.md")

_BLOCK = re.compile(r"(<!-- options:([\w-]+) -->\n)(.*?)(<!-- /options -->)", re.S)


def _default(option: Option) -> str:
    value: Any = option.default
    if option.flag:
        return "off"
    if value is None or value == []:
        return "none"
    if option.name == "umask":
        return f"`{value:03o}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and option.coerce is not None and getattr(option.coerce, "coerceDoc", ""):
        for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
            if value and value % (1 << shift) == 0:
                return f"{value >> shift}{unit}"
    if isinstance(value, str):
        return f"`{value}`"
    return str(value)


def _options(name: str) -> list[Option]:
    from suite.tap import GLOBAL_OPTIONS, OPTIONS, SERVICES

    if name == "all":
        return list(OPTIONS.values())
    if name == "global":
        return list(GLOBAL_OPTIONS)
    for service in SERVICES:
        if service.name == name:
            return [service.listen_option, *service.options]
    raise KeyError(f"no service {name!r} for an options table")


def _modes() -> str:
    from suite.tap import SERVICES

    rows = ["| mode | service | default address |", "|---|---|---|"]
    for service in SERVICES:
        spec = f" ([spec]({service.docs.removeprefix('docs/')}))" if service.docs else ""
        rows.append(f"| `{service.name}` | {service.summary}{spec} | `{service.default_listen}` |")
    rows.append("| `all` (default) | every service above, in one process | each its own default |")
    return "\n".join(rows) + "\n"


def render(name: str) -> str:
    """The markdown table of ``name``: ``modes``, or the options of a service, ``global`` or ``all``."""
    if name == "modes":
        return _modes()
    rows = ["| flag and config key | default | meaning |", "|---|---|---|"]
    for option in _options(name):
        meaning = option.help + ("" if option.reloadable else " Fixed at start (a reload keeps it).")
        rows.append(f"| `--{option.name}` | {_default(option)} | {meaning} |")
    return "\n".join(rows) + "\n"


def update(path: Path) -> bool:
    """Rewrite the tables in ``path``; ``True`` if anything changed."""
    text = path.read_text(encoding="utf-8")
    new = _BLOCK.sub(lambda m: m.group(1) + render(m.group(2)) + m.group(4), text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # pragma: no cover - a developer's command
    root = Path(__file__).resolve().parent.parent
    changed = [name for name in DOCS if update(root / name)]
    print("updated: " + ", ".join(changed) if changed else "up to date", file=sys.stderr)
