"""
The config file and live reload.

``--config FILE`` reads TOML whose top-level keys are the long option names
without the dashes (``chat-max-line = 4096``, ``mode = "chat,upload"``);
options given on the command line win over the file.  SIGHUP reads the
command line and the file again and applies every limit to the running
services (new and open connections alike) and reloads TLS certificates.  A
file that does not parse or validate on reload is one error in the log, and
the running configuration stays; addresses and other values fixed at start
are kept, and the log says so.
"""

from __future__ import annotations

import signal
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.python import usage

from suite.endpoints import EndpointError, ListeningService
from suite.service import Option, ServiceDescriptor

__all__ = ["ConfigReloader", "apply_config_file", "read_config_file"]

log = Logger()


def read_config_file(path: str) -> dict[str, Any]:
    """
    The keys and values of a TOML config file.

    :raises usage.UsageError: the file cannot be read or is not TOML; the
        message names the file (and the line, for a syntax error).
    """
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise usage.UsageError(f"--config: {e.strerror}: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise usage.UsageError(f"--config: {path} is not valid TOML: {e}") from None


def _as_text(option: Option, key: str, value: Any) -> list[str]:
    """A config value as the command-line text(s) it stands for."""
    if option.flag:
        if not isinstance(value, bool):
            raise usage.UsageError(f"--config: {key} must be true or false, not {value!r}")
        return []
    items = value if isinstance(value, list) else [value]
    if len(items) != 1 and not option.multiple:
        raise usage.UsageError(f"--config: {key} takes one value, not a list")
    texts = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise usage.UsageError(f"--config: {key} must be a string or a number, not {item!r}")
        texts.append(str(item))
    return texts


def apply_config_file(
    values: Any, path: str, options: Mapping[str, Option], given: Iterable[str]
) -> dict[str, list[str]]:
    """
    Set ``values[key]`` from the file at ``path`` for every key not in
    ``given`` (the options on the command line, which win).

    :return: the keys set, each with its value as command-line arguments
        (``["--history=50"]``; ``["--reuse-port"]`` or ``[]`` for a flag).
    :raises usage.UsageError: an unknown key, a value of the wrong kind, or
        a value its option refuses; the message names the key.
    """
    given = set(given)
    applied: dict[str, list[str]] = {}
    for key, value in read_config_file(path).items():
        option = options.get(key)
        if option is None or key == "config":
            raise usage.UsageError(f"--config: unknown key {key!r} in {path} (keys are long option names)")
        texts = _as_text(option, key, value)
        if option.flag:
            parsed: Any = value
        elif option.multiple:
            parsed = [item for text in texts for item in option.parse_items(text)]
        else:
            parsed = option.parse(texts[0])
        if key not in given:  # the command line wins, but the file's value must be valid too
            values[key] = parsed
            if option.flag:
                applied[key] = [f"--{key}"] if value else []
            else:
                applied[key] = [f"--{key}={text}" for text in texts]
    return applied


class ConfigReloader(Service):
    """
    Reloads the configuration on SIGHUP (see the module docstring).

    :param options: the running configuration (a ``suite.tap.Options``).
    :param running: each running service with its descriptor.
    :param workers: the ``--workers`` pool, told to reload too.
    """

    def __init__(
        self,
        options: Any,
        running: list[tuple[ServiceDescriptor, ListeningService]],
        reactor: Any,
        workers: Any = None,
    ) -> None:
        self.setName("config")
        self.options = options
        self.services = running
        self.reactor = reactor
        self.workers = workers
        self._previous_handler: Any = None

    def startService(self) -> None:
        super().startService()
        if hasattr(signal, "SIGHUP"):
            self._previous_handler = signal.signal(
                signal.SIGHUP, lambda signum, frame: self.reactor.callFromThread(self.reload)
            )

    def stopService(self) -> None:
        super().stopService()
        if self._previous_handler is not None:
            signal.signal(signal.SIGHUP, self._previous_handler)
            self._previous_handler = None

    def reload(self) -> bool:
        """Read the configuration again and apply it; ``False`` (and one log line) if it is refused."""
        source = self.options["config"] or "the command line"
        try:
            new = type(self.options)()
            new.parseOptions(self.options.argv)
        except usage.UsageError as e:
            log.error("reload refused, the running configuration stays: {error}", error=str(e))
            return False
        from suite.tap import OPTIONS

        for name, option in OPTIONS.items():
            if not option.reloadable and new[name] != self.options[name]:
                log.warn(
                    "reload: --{option} cannot change while running (restart to apply); keeping {value!r}",
                    option=name, value=self.options[name],
                )
                new[name] = self.options[name]
        for descriptor, service in self.services:
            if descriptor.reconfigure is not None:
                descriptor.reconfigure(service.target, new)
            try:
                service.reload_tls()
            except EndpointError as e:
                log.error("reload: {service} keeps its TLS certificate: {error}", service=service.name, error=str(e))
        self.options = new
        if self.workers is not None:
            self.workers.reload()
        log.info("configuration reloaded from {source}", source=source)
        return True
