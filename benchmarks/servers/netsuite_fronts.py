"""
netsuite's chat with its IRC and WebSocket fronts on one ChatServer, every
limit off, for the fan-out benchmark.  Usage: python netsuite_fronts.py

Prints ``chat listening on PORT``, ``irc listening on PORT`` and
``websocket listening on PORT`` (WebSocket at /chat), all on 127.0.0.1.
"""

import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site

from suite.chat import ChatFactory, ChatServer
from suite.chat.websocket import chat_websocket_resource
from suite.irc import IRCFactory

globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
OFF = {"flood_rate": None, "max_pending": None, "max_connections": None, "max_per_ip": None}

server = ChatServer(history=0)
chat = reactor.listenTCP(0, ChatFactory(server, **OFF), interface="127.0.0.1", backlog=1024)
irc = reactor.listenTCP(0, IRCFactory(server, **OFF), interface="127.0.0.1", backlog=1024)
root = Resource()
root.putChild(b"chat", chat_websocket_resource(server, **OFF))
web = reactor.listenTCP(0, Site(root), interface="127.0.0.1", backlog=1024)
for name, port in (("chat", chat), ("irc", irc), ("websocket", web)):
    print(f"{name} listening on {port.getHost().port}", flush=True)  # noqa: T201
reactor.run()
