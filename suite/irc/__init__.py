"""
The chat over IRC: real IRC clients (irssi, WeeChat, HexChat...) in the same
rooms as the line chat and the chat page.  See docs/protocols/irc.md.
"""

from typing import Any

__all__ = ["IRCConnection", "IRCFactory"]


def __getattr__(name: str) -> Any:
    # Lazily: twisted.words.protocols.irc imports the global reactor, and
    # importing netsuite (twistd's option parsing) must not install one.
    if name == "IRCConnection":
        from suite.irc.protocol import IRCConnection

        return IRCConnection
    if name == "IRCFactory":
        from suite.irc.factory import IRCFactory

        return IRCFactory
    raise AttributeError(f"module 'suite.irc' has no attribute {name!r}")
