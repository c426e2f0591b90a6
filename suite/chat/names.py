"""
Nicknames and room names in any script.

A name is checked and compared with the PRECIS ``UsernameCaseMapped``
profile of RFC 8265 (through ``precis-i18n``): ``Alice``, ``ALICE`` and the
full-width ``ＡＬＩＣＥ`` are one name, and so are ``Дима`` and ``дима``.  On top
of the profile a name may only hold letters, combining marks and digits of
any script, ``_`` and ``-``: no spaces, punctuation, symbols, or control,
format, bidi or invisible characters (PRECIS refuses most of these already;
the narrower rule keeps names safe inside IRC and chat lines).

Two names that look alike but differ (Latin ``a`` and Cyrillic ``а``) are
told apart by their *skeletons*: every character replaced by a
representative of its Unicode confusables class (UTS #39 data, from
``confusable-homoglyphs``).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables
from precis_i18n import get_profile

__all__ = ["NAME_MAX", "NAME_RULE", "InvalidName", "check_name", "look_key", "name_key", "skeletons"]

#: Longest name, in characters.
NAME_MAX = 32

#: What a name may be: every error about a name says this.
NAME_RULE = (
    f"use 1-{NAME_MAX} letters or digits of any script, _ or - "
    "(no spaces, punctuation, symbols, or control, format, bidi or invisible characters)"
)

_CASE_MAPPED = get_profile("UsernameCaseMapped")
_CASE_PRESERVED = get_profile("UsernameCasePreserved")
_EXTRA = frozenset("_-")
_ALLOWED_CATEGORIES = frozenset(("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Nd"))


class InvalidName(ValueError):
    """A name breaks the rules; ``str()`` says which character and why."""


def check_name(name: str) -> str:
    """
    ``name`` as it is shown (NFC, full-width letters made normal width, case
    kept), or :class:`InvalidName` saying what is wrong with it.
    """
    shown = _shown(name)
    if isinstance(shown, InvalidName):
        raise shown
    return shown


@lru_cache(maxsize=4096)
def _shown(name: str) -> str | InvalidName:
    # Cached: the same few names are checked on every command that names them.
    if not name:
        return InvalidName("a name cannot be empty")
    if len(name) > 4 * NAME_MAX:
        return InvalidName(f"a name has at most {NAME_MAX} characters")
    try:
        shown = _CASE_PRESERVED.enforce(name)
    except UnicodeEncodeError as e:
        bad = name[e.start] if e.start < len(name) else ""
        return InvalidName(f"{_describe(bad)} is not allowed in a name" if bad else "a name cannot be empty")
    if len(shown) > NAME_MAX:
        return InvalidName(f"a name has at most {NAME_MAX} characters, not {len(shown)}")
    for char in shown:
        if char not in _EXTRA and unicodedata.category(char) not in _ALLOWED_CATEGORIES:
            return InvalidName(f"{_describe(char)} is not allowed in a name")
    return shown


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    code = f"U+{ord(char):04X}"
    return f"{char!r} ({code} {name})" if name and char.isprintable() else f"{code}{' ' + name if name else ''}"


@lru_cache(maxsize=4096)
def name_key(name: str) -> str:
    """
    The key two names compare equal by (case- and width-insensitive), for a
    name that :func:`check_name` accepts; for any other string, a key no
    valid name has (so lookups of invalid names find nothing).
    """
    try:
        return _CASE_MAPPED.enforce(name)
    except UnicodeEncodeError:
        return "\x00" + name


@lru_cache(maxsize=1)
def _classes() -> dict[str, str]:
    """Every single confusable character mapped to one member of its class."""
    parent: dict[str, str] = {}

    def find(c: str) -> str:
        while parent.get(c, c) != c:
            c = parent[c]
        return c

    for char, homoglyphs in confusables.confusables_data.items():
        if len(char) != 1:
            continue
        for glyph in homoglyphs:
            other = glyph["c"].strip("\u200e\u200f")  # bidi marks around RTL samples
            if len(other) == 1:
                a, b = find(char), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {c: find(c) for c in parent}


def _skeleton(text: str) -> str:
    classes = _classes()
    mapped = "".join(classes.get(c, c) for c in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


@lru_cache(maxsize=4096)
def skeletons(name: str) -> frozenset[str]:
    """
    What ``name`` looks like: two valid names whose skeleton sets meet are
    confusable.  Both the name as shown and its case-mapped key count, so
    ``Ian`` (capital i) and ``lan`` are caught as well as ``аlice`` and ``alice``.
    """
    return frozenset((_skeleton(name), _skeleton(name_key(name))))


@lru_cache(maxsize=4096)
def look_key(name: str) -> str:
    """
    One key per look, for a store that can only compare keys (the chat
    backplane's nickname claims in Redis): the skeleton of ``name``'s
    case-mapped key.  Two names with the same look key are confusable
    (``alice`` and Cyrillic ``аlice``, ``ALICE`` too); confusable names whose
    look keys differ (``Ian`` and ``lan``) are caught by :func:`skeletons`.
    """
    return _skeleton(name_key(name))
