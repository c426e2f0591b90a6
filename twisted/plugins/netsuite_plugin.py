"""twistd plugin: ``twistd netsuite``. The real code lives in ``suite.tap``."""

from twisted.application.service import ServiceMaker

netsuite = ServiceMaker(
    "netsuite",
    "suite.tap",
    "Event-driven network services: TCP and UDP echo, chat.",
    "netsuite",
)
