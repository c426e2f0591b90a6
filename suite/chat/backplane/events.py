"""
The backplane's message format: one JSON object per pub/sub message.

Every event has ``v`` (format version, 1), ``n`` (the sending node), ``s``
(the node's sequence number), ``k`` (the kind) and the fields of its kind:

========  =====================================================
kind      fields
========  =====================================================
join      ``u`` nick, ``r`` room
quit      ``u`` nick, ``r`` room or ``""``, ``why`` reason (left the chat)
part      ``u`` nick, ``r`` room, ``why`` reason (left the room, still here)
nick      ``o`` old nick, ``u`` new nick, ``r`` room or ``""``
msg, act  ``u`` nick, ``r`` room, ``t`` text
priv      ``u`` sender, ``to`` target, ``t`` text
topic     ``u`` nick, ``r`` room, ``t`` topic, ``at`` time set
hello     ``users``: ``[[nick, room], ...]`` (the node's whole state)
bye       nothing: the node is stopping
========  =====================================================

:func:`decode` checks all of it and raises :class:`BadEvent` saying what is
wrong, so a message from something that is not a netsuite node of this
version is ignored, never half-applied.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BadEvent", "MAX_EVENT", "MAX_MESSAGE", "MAX_TEXT", "decode", "decode_message", "encode"]

#: Longest event accepted, in bytes of JSON.
MAX_EVENT = 64 * 1024
#: Longest message (a JSON array of events) accepted, in bytes.
MAX_MESSAGE = 16 * 1024 * 1024
#: Longest text (message, topic, reason) accepted, in characters.
MAX_TEXT = 16 * 1024
#: Most users in one ``hello``.
MAX_USERS = 100_000

_NAME_FIELDS = {
    "join": ("u", "r"),
    "quit": ("u",),
    "part": ("u", "r"),
    "nick": ("o", "u"),
    "msg": ("u", "r"),
    "act": ("u", "r"),
    "priv": ("u", "to"),
    "topic": ("u", "r"),
    "hello": (),
    "bye": (),
}
_TEXT_FIELDS = {"quit": "why", "part": "why", "msg": "t", "act": "t", "priv": "t", "topic": "t"}


class BadEvent(ValueError):
    """A message that is not a valid backplane event; ``str()`` says why."""


def encode(node: str, seq: int, kind: str, **fields: Any) -> str:
    """One event as JSON text."""
    return json.dumps({"v": 1, "n": node, "s": seq, "k": kind, **fields}, ensure_ascii=False, separators=(",", ":"))


def _name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable() and " " not in value


def decode_message(raw: str | bytes) -> list[dict[str, Any]]:
    """
    The events of one pub/sub message (a JSON array of events, or one
    event), all checked and all from one node; :class:`BadEvent` if any is
    wrong, and then none is used.
    """
    if len(raw) > MAX_MESSAGE:
        raise BadEvent(f"longer than {MAX_MESSAGE} bytes")
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadEvent("not JSON") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    decoded = [_check(item) for item in items]
    if len({event["n"] for event in decoded}) > 1:
        raise BadEvent("events from several nodes in one message")
    return decoded


def decode(raw: str | bytes) -> dict[str, Any]:
    """The one event in ``raw``, checked; :class:`BadEvent` if it is not one."""
    if len(raw) > MAX_EVENT:
        raise BadEvent(f"longer than {MAX_EVENT} bytes")
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadEvent("not JSON") from None
    return _check(event)


def _check(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise BadEvent("not a JSON object")
    if event.get("v") != 1:
        raise BadEvent(f"unknown version {str(event.get('v'))[:20]!r}")
    kind = event.get("k")
    if kind not in _NAME_FIELDS:
        raise BadEvent(f"unknown kind {str(kind)[:20]!r}")
    if not _name(event.get("n")) or not isinstance(event.get("s"), int):
        raise BadEvent("no valid node or sequence number")
    for name in _NAME_FIELDS[kind]:
        if not _name(event.get(name)):
            raise BadEvent(f"{kind}: field {name!r} is not a name")
    text = _TEXT_FIELDS.get(kind)
    if text is not None and not (isinstance(event.get(text), str) and len(event[text]) <= MAX_TEXT):
        raise BadEvent(f"{kind}: field {text!r} is not a text of at most {MAX_TEXT} characters")
    if kind in ("nick", "quit") and not isinstance(event.get("r"), str):
        raise BadEvent(f"{kind}: field 'r' is not a string")
    if kind == "topic" and not isinstance(event.get("at"), (int, float)):
        raise BadEvent("topic: field 'at' is not a time")
    if kind == "hello":
        users = event.get("users")
        if not isinstance(users, list) or len(users) > MAX_USERS or not all(
            isinstance(u, list) and len(u) == 2 and _name(u[0]) and (u[1] == "" or _name(u[1])) for u in users
        ):
            raise BadEvent("hello: 'users' is not a list of [nick, room]")
    return event
