"""
Demo: three users on the chat service.

Every step waits until everything it caused has reached every screen, then
shows the screens: each line appears under the step that caused it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from suite.chat import ChatFactory
from suite.demo._common import Screen, note, say
from suite.demo.lang import Text

#: What alice types to forge a line: a carriage return, a fake line from
#: "admin", and an escape sequence that would clear a terminal.
FORGED = "fake\r[lobby] <admin> reboot now\x1b[2J"


async def run(reactor: Any, text: Text) -> None:
    factory = ChatFactory(history=5, max_per_ip=None)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    screens: list[Screen] = []

    def show() -> None:
        for screen in screens:
            screen.show()

    async def settle(*waits: defer.Deferred[str]) -> None:
        await defer.gatherResults(list(waits), consumeErrors=True)
        show()

    async def arrive(nick: str) -> Screen:
        screen = await connectProtocol(endpoint, Screen(nick, text))
        screens.append(screen)
        await screen.wait_for(r"^\*\*\* join: guest\d+ joined lobby")
        screen.send(f"/nick {nick}")
        await screen.wait_for(rf"is now {nick}$")
        return screen

    say(text("chat.server", address=f"127.0.0.1:{port.getHost().port}"))

    say(text("chat.alice_arrives"))
    alice = await arrive("alice")
    show()

    say(text("chat.bob_arrives"))
    bob = await arrive("bob")
    await settle(alice.wait_for(r"guest\d+ is now bob"))

    say(text("chat.alice_talks"))
    alice.send("hi bob! anyone else around?")
    await settle(alice.wait_for("anyone else around"), bob.wait_for("anyone else around"))

    say(text("chat.bob_acts"))
    bob.send("/me waves")
    await settle(alice.wait_for(r"\* bob waves"), bob.wait_for(r"\* bob waves"))

    say(text("chat.carol_arrives"))
    carol = await arrive("carol")
    await settle(alice.wait_for(r"is now carol"), bob.wait_for(r"is now carol"))

    say(text("chat.private"))
    alice.send("/msg carol welcome! bob waves a lot")
    await settle(carol.wait_for(r"\[private\]"), alice.wait_for(r"\[private\]"))

    say(text("chat.rooms"))
    bob.send("/join games")
    await carol.wait_for("bob left lobby")
    carol.send("/who")
    await settle(bob.wait_for("joined games"), alice.wait_for("bob left lobby"), carol.wait_for(r"^\*\*\* who:"))

    say(text("chat.forge"))
    note(text("sends", who="alice", line=ascii(FORGED)))
    alice.send(FORGED)
    await settle(alice.wait_for("fake"), carol.wait_for("fake"))
    note(text("chat.forge_result"))

    say(text("chat.quit"))
    alice.send("/quit lunch time")
    await settle(carol.wait_for(r"alice left lobby \(quit: lunch time\)"), alice.closed)  # type: ignore[arg-type]
    for screen in (bob, carol):
        screen.transport.loseConnection()
        await screen.closed
    await port.stopListening()
    say(text("chat.done"))
