"""
The chat over IRC: real IRC clients (irssi, WeeChat, HexChat...) in the same
rooms as the line chat and the chat page.  See docs/protocols/irc.md.
"""

from suite.irc.protocol import IRCConnection, IRCFactory

__all__ = ["IRCConnection", "IRCFactory"]
