"""twistd plugin: ``twistd netsuite``. The real code lives in ``suite.tap``."""

from twisted.application.service import ServiceMaker

# The description names every service of suite.registry (tests/test_tap.py checks it).
netsuite = ServiceMaker(
    "netsuite",
    "suite.tap",
    "Event-driven network services: TCP echo (RFC 862), UDP echo, "
    "line-based chat for nc and telnet, the chat's rooms for IRC clients (irssi, WeeChat, HexChat), "
    "file upload and download, "
    "files over HTTP for curl, wget, browsers and tus.",
    "netsuite",
)
