"""Demo: three users on the chat service."""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from suite.chat import ChatFactory
from suite.demo._common import Screen, say


async def run(reactor: Any) -> None:
    factory = ChatFactory(history=5, max_per_ip=None)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    say(f"A chat server listens on 127.0.0.1:{port.getHost().port}; nobody logs in, everybody just connects.")

    async def arrive(nick: str) -> Screen:
        screen = await connectProtocol(endpoint, Screen(nick))
        await screen.wait_for(r"^\*\*\* join: guest\d+ joined lobby")
        screen.sendLine(f"/nick {nick}".encode())
        await screen.wait_for(rf"is now {nick}$")
        return screen

    alice = await arrive("alice")
    alice.show()
    say("bob connects while alice is there: she sees him arrive and rename himself.")
    bob = await arrive("bob")
    await alice.wait_for(r"guest\d+ is now bob")
    alice.show()
    bob.show()

    say("alice types a line: everyone in the room gets it, with her name.")
    alice.sendLine(b"hi bob! anyone else around?")
    await bob.wait_for("anyone else around")
    alice.show()
    bob.show()

    say("bob uses /me; then carol arrives and the room's recent history is replayed to her.")
    bob.sendLine(b"/me waves")
    await alice.wait_for(r"\* bob waves")
    carol = await arrive("carol")
    carol.show()

    say("alice sends carol a private message with /msg: bob never sees it.")
    alice.sendLine(b"/msg carol welcome! bob waves a lot")
    await carol.wait_for(r"\[private\]")
    carol.show()
    alice.show()
    bob.show()

    say("bob moves to another room with /join; carol asks who is left with /who.")
    bob.sendLine(b"/join games")
    await carol.wait_for("left lobby")
    carol.sendLine(b"/who")
    await carol.wait_for(r"^\*\*\* who:")
    bob.show()
    carol.show()

    say("A line with control characters cannot forge text on other screens.")
    alice.sendLine("fake\r[lobby] <admin> reboot now\x1b[2J".encode())
    await carol.wait_for("fake")
    carol.show()

    say("alice leaves with /quit; carol is told why. Everyone else disconnects.")
    alice.sendLine(b"/quit lunch time")
    await carol.wait_for(r"alice left lobby \(quit: lunch time\)")
    await alice.closed
    alice.show()
    carol.show()
    for screen in (bob, carol):
        screen.transport.loseConnection()
        await screen.closed
    await port.stopListening()
    say("Done. Try it yourself: twistd -n netsuite --mode chat, then nc 127.0.0.1 8023")
