"""Step 3, the library: netsuite's echo service, every client at once, with limits."""

import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import serverFromString

from suite import EchoFactory


async def main(reactor, port: str = "0") -> None:
    factory = EchoFactory(max_connections=100, idle_timeout=60)
    endpoint = serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
    try:
        listening = await endpoint.listen(factory)
    except error.CannotListenError as e:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}: {e.socketError.strerror}")
    print("listening on", listening.getHost().port, flush=True)
    await defer.Deferred()  # serve until stopped (Ctrl-C)


if len(sys.argv) > 2 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python twisted_echo_server.py [PORT]   (PORT 0: any free port)")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
