"""
Every service ``twistd netsuite`` can run, in ``--mode all`` order.

Adding a service is one line here; everything else about it lives next to
its own code, in its :class:`suite.service.ServiceDescriptor`.
"""

from __future__ import annotations

from suite.chat.service import CHAT_SERVICE
from suite.echo.service import ECHO_SERVICE, UDP_ECHO_SERVICE
from suite.files.service import UPLOAD_SERVICE
from suite.irc.service import IRC_SERVICE
from suite.service import ServiceDescriptor
from suite.web.service import WEB_SERVICE

__all__ = ["SERVICES"]

SERVICES: tuple[ServiceDescriptor, ...] = (
    ECHO_SERVICE,
    UDP_ECHO_SERVICE,
    CHAT_SERVICE,
    IRC_SERVICE,
    UPLOAD_SERVICE,
    WEB_SERVICE,
)
