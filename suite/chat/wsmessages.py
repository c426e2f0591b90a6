"""
The chat's WebSocket messages: one JSON object each.  What the server
sends for each chat event (:func:`event_json`, :func:`event_frame`) and what
each request ``type`` does (:data:`REQUESTS`).  See docs/protocols/websocket.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wsproto.frame_protocol import FrameProtocol

from suite.chat.wire import ServerLine

if TYPE_CHECKING:
    from suite.chat.rooms import ChatServer
    from suite.chat.websocket import ChatWebSocket

__all__ = ["NEEDS", "REQUESTS", "dumps", "event_frame", "event_json", "frame"]

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# Server frames are never masked, and no extension is negotiated, so a
# message's frame is the same bytes for every recipient: framed once per line.
frame = FrameProtocol(client=False, extensions=[]).send_data


def event_frame(what: ServerLine) -> bytes | None:
    """:func:`event_json` as a WebSocket text frame, ready for any recipient's socket."""
    text = event_json(what)
    return None if text is None else bytes(frame(text, fin=True))


def event_json(what: ServerLine) -> str | None:
    """
    The JSON event every WebSocket member of a room is sent for ``what``
    (the same for all, so computed once per line); ``None`` for what is
    told to one user only (see ``ChatWebSocket._frames``).
    """
    kind = what.kind
    if kind in ("message", "action"):
        return dumps({"type": kind, "room": what.room, "nick": what.nick, "text": what.text})
    if kind == "private":
        return dumps({"type": "private", "from": what.nick, "to": what.target, "text": what.text})
    if kind == "history":
        return dumps({"type": "history", "room": what.room, "nick": what.nick, "text": what.detail,
                       "action": what.code == "action"})
    if kind == "error":
        return dumps({"type": "error", "code": what.code, "text": what.text})
    code = what.code
    if code == "join":
        return dumps({"type": "join", "room": what.room, "nick": what.nick})
    if code == "leave":
        return dumps({"type": "leave", "room": what.room, "nick": what.nick, "reason": what.detail})
    if code == "nick":
        return dumps({"type": "nick", "old": what.nick, "new": what.target})
    if code == "topic":
        return dumps({"type": "topic", "room": what.room, "nick": what.nick, "text": what.detail})
    return dumps({"type": "notice", "kind": code, "text": what.text})


def _text(request: dict[str, Any], key: str = "text") -> str:
    value = request[key]
    if not isinstance(value, str):
        raise TypeError(key)
    return value


def _topic(ws: ChatWebSocket, server: ChatServer, request: dict[str, Any]) -> None:
    server.topic(ws, _text(request) if "text" in request else None)


def _quit(ws: ChatWebSocket, server: ChatServer, request: dict[str, Any]) -> None:
    reason = str(request.get("reason", ""))[:200]
    ws.close(1000, "bye", "goodbye", f"quit: {reason}" if reason else "quit")


#: What each request type does.
REQUESTS: dict[str, Callable[[ChatWebSocket, ChatServer, dict[str, Any]], None]] = {
    "say": lambda ws, server, r: server.say(ws, _text(r)),
    "me": lambda ws, server, r: server.act(ws, _text(r)),
    "msg": lambda ws, server, r: server.whisper(ws, _text(r, "to"), _text(r)),
    "join": lambda ws, server, r: server.join(ws, _text(r, "room")),
    "nick": lambda ws, server, r: server.rename(ws, _text(r, "nick")),
    "who": lambda ws, server, r: server.who(ws),
    "rooms": lambda ws, server, r: server.list_rooms(ws),
    "topic": _topic,
    "quit": _quit,
}
#: What each request type needs, for the error that says so.
NEEDS = {"say": '"text"', "me": '"text"', "msg": '"to" and "text"', "join": '"room"', "nick": '"nick"',
          "who": "nothing", "rooms": "nothing", "topic": 'an optional "text"', "quit": 'an optional "reason"'}


