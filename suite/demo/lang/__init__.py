"""
The demos' narration, one catalogue module per language (``en.py``,
``zh.py``), each a ``MESSAGES`` dict of ``str.format`` templates with the
same keys and the same placeholders (``tests/test_demo.py`` checks).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

__all__ = ["LANGUAGES", "Text", "pick_language"]

#: Languages the demos narrate in.
LANGUAGES = ("en", "zh")


def pick_language(requested: str | None, environ: Mapping[str, str]) -> str:
    """
    ``requested`` (``--lang``) if given; otherwise the POSIX locale
    variables in their order of precedence (``LC_ALL``, then
    ``LC_MESSAGES``, then ``LANG``): Chinese for any ``zh*`` locale
    (``zh_CN.UTF-8``, ``zh_TW``...), English otherwise.
    """
    if requested:
        return requested
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable)
        if value:  # the first one set decides, as for every POSIX program
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


class Text:
    """The narration of one language: ``text("key", name=...)`` is the filled-in template."""

    def __init__(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"no narration in {language!r}; choose from {', '.join(LANGUAGES)}")
        self.language = language
        self.messages: Mapping[str, str] = importlib.import_module(f"suite.demo.lang.{language}").MESSAGES

    def __call__(self, key: str, **values: object) -> str:
        return self.messages[key].format(**values)
