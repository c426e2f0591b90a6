"""
Service descriptors: how a netsuite service declares itself.

Each service states once, next to its own code, what it is: its name, a
one-line summary, its default address, whether it is a stream or a datagram
service, whether several processes may share its port, its options, and how
it builds its factory (or datagram protocol) from plain option values.
:mod:`suite.registry` lists the descriptors; :mod:`suite.tap` assembles them
into ``twistd netsuite`` options and a service tree.  The ``--mode``
choices, ``--help``, the plugin's description, what ``--workers`` accepts,
the config file's keys and the option tables in the docs all come from here.

Option values reach ``build`` as a read-only mapping keyed by the long
option name (``config["chat-max-line"]``), already coerced.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import DatagramProtocol
from twisted.python import usage

__all__ = [
    "Config",
    "Option",
    "ServiceContext",
    "ServiceDescriptor",
    "Target",
    "ip_address",
    "non_negative",
    "port_number",
    "positive_int",
    "positive_size",
    "size",
]

#: Option values by long option name.
Config = Mapping[str, Any]
#: What a service listens with: a stream factory or a datagram protocol.
Target = IProtocolFactory | DatagramProtocol
T = TypeVar("T")


@dataclass(frozen=True)
class Option:
    """
    One option of a service: ``--NAME VALUE`` on the command line and
    ``NAME = VALUE`` in the config file.

    :ivar coerce: turns the text of the value into the value; raises
        ``usage.UsageError`` or ``ValueError`` with a message saying what is
        expected.  ``None`` keeps the text.
    :ivar multiple: the option may be given several times and each value
        may list several items separated by commas; the value is a list.
    :ivar reloadable: a new value takes effect on reload (SIGHUP).  Values
        fixed at start (a directory, an address) are kept on reload, and the
        log says so.
    :ivar flag: the option takes no value (``--NAME``); the value is a bool.
    """

    name: str
    default: Any
    help: str
    coerce: Callable[[str], Any] | None = None
    multiple: bool = False
    reloadable: bool = True
    flag: bool = False

    def parse(self, text: str) -> Any:
        """Coerce one command-line value (one item of a ``multiple`` option)."""
        if self.coerce is None:
            return text
        try:
            return self.coerce(text)
        except ValueError as e:
            raise usage.UsageError(f"--{self.name}: {e}") from None
        except usage.UsageError as e:
            raise usage.UsageError(f"--{self.name}: {e}") from None

    def parse_items(self, text: str) -> list[Any]:
        """The items of one value of a ``multiple`` option."""
        return [self.parse(item.strip()) for item in text.split(",") if item.strip()]


@dataclass(frozen=True)
class ServiceDescriptor:
    """
    What one service is (see the module docstring).

    :ivar build: ``build(config, context)`` returns the factory or datagram
        protocol to listen with.
    :ivar multiprocess: whether ``--workers`` may run the service in
        several processes sharing its port; a callable decides from the
        configuration (a chat with a backplane may, one without may not).
    :ivar reconfigure: ``reconfigure(target, config)`` applies new option
        values (limits) to a running service: its existing connections and
        the next ones.  ``None``: the service has nothing to apply.
    :ivar docs: the page that documents the service's protocol.
    """

    name: str
    summary: str
    default_listen: str
    build: Callable[[Config, ServiceContext], Target]
    options: tuple[Option, ...] = ()
    datagram: bool = False
    multiprocess: bool | Callable[[Config], bool] = False
    reconfigure: Callable[[Any, Config], None] | None = None
    docs: str = ""

    @property
    def listen_option(self) -> Option:
        """The ``--NAME-listen`` option every service has."""
        return Option(
            f"{self.name}-listen", self.default_listen,
            f"Address of the {self.name} service ({self.summary}).", reloadable=False,
        )

    def runs_in_workers(self, config: Config) -> bool:
        """Whether ``--workers`` may run this service with ``config``."""
        if callable(self.multiprocess):
            return self.multiprocess(config)
        return self.multiprocess


@dataclass
class ServiceContext:
    """
    What every service's ``build`` shares with the others in one process:
    the reactor, and objects several services use (one ``ChatServer`` for
    every chat front, one ``Storage`` for the file services).
    """

    reactor: Any
    _shared: dict[str, Any] = field(default_factory=dict)

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """The process's one object for ``key``, made by ``make`` the first time."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]  # type: ignore[no-any-return]


# -- coercions shared by the services' options --------------------------------


def non_negative(kind: type) -> Callable[[str], Any]:
    """A number of ``kind`` (``int``, ``float``), zero or more."""

    def coerce(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise usage.UsageError(f"expected a {kind.__name__}, got {value!r}") from None
        if number < 0 or number != number:  # NaN is not a limit
            raise usage.UsageError(f"expected zero or more, got {value!r}")
        return number

    coerce.__name__ = f"non_negative_{kind.__name__}"
    return coerce


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size(value: str) -> int:
    """Bytes, with an optional binary unit: 512K, 64M, 4G, 1T (or KiB, MiB...)."""
    text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    number = text[: len(text) - len(unit)]
    if not number.isascii() or not number.isdigit():
        raise usage.UsageError(f"expected a size such as 1048576, 512K, 64M or 4G; got {value!r}")
    return int(number) * _UNITS[unit]


size.coerceDoc = "Units: K, M, G, T (powers of 1024)."  # type: ignore[attr-defined]


def positive_size(value: str) -> int:
    """A :func:`size` of at least one byte."""
    result = size(value)
    if result < 1:
        raise usage.UsageError(f"expected a size of at least 1 byte, got {value!r}")
    return result


positive_size.coerceDoc = size.coerceDoc  # type: ignore[attr-defined]


def positive_int(value: str) -> int:
    """A whole number of at least 1."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise usage.UsageError(f"expected a whole number of at least 1, got {value!r}")
    return int(text)


def port_number(value: str) -> int:
    """A port number 1-65535."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise usage.UsageError(f"expected a port number 1-65535, got {value!r}")
    return int(text)


def ip_address(value: str) -> str:
    """An IPv4 or IPv6 address, in its normal form."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise usage.UsageError(f"{value!r} is not an IP address") from None
