"""Step 3, the event-driven way: netsuite's echo service, every client at once."""

from twisted.internet import defer, task
from twisted.internet.endpoints import serverFromString

from suite import EchoFactory


async def main(reactor) -> None:
    factory = EchoFactory(max_connections=100, idle_timeout=60)
    port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    print("listening on", port.getHost().port, flush=True)
    await defer.Deferred()  # serve until stopped (Ctrl-C)


task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
