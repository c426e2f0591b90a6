"""
The chat page in headless Debian chromium (Playwright): two browser pages,
a real IRC client (sic) and an ``nc``-style line user in one room, each
seeing the others' lines.  A screenshot is kept in tests/artifacts/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.web.resource import Resource
from twisted.web.server import Site

from suite.chat import ChatFactory, ChatServer
from suite.chat.websocket import chat_page_resource, chat_websocket_resource
from suite.irc import IRCFactory
from tests.chat.test_loopback import join
from tests.helpers import ROOT, spawn, stop_tracked, track
from tests.irc.test_clients import ended

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(shutil.which("sic") is None, reason="sic is not installed"),
    pytest.mark.timeout(120),
]


def browse(url: str, screenshot: Path) -> list[list[str]]:
    """In a worker thread: two pages talk, and wait for the IRC and nc users' lines; the pages' logs."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            a = browser.new_page()
            b = browser.new_page()
            a.goto(f"{url}?nick=网页甲")
            b.goto(f"{url}?nick=webB")
            for page, nick in ((a, "网页甲"), (b, "webB")):
                expect(page.locator("#users")).to_contain_text(nick, timeout=15000)
                expect(page.locator("#room")).to_have_text("#lobby")
            a.fill("#line", "hello from page A")
            a.press("#line", "Enter")
            expect(b.locator("#log")).to_contain_text("<网页甲> hello from page A", timeout=15000)
            b.fill("#line", "/me waves from page B")
            b.press("#line", "Enter")
            expect(a.locator("#log")).to_contain_text("* webB waves from page B", timeout=15000)
            for page in (a, b):
                expect(page.locator("#log")).to_contain_text("<ncuser> hello from nc", timeout=20000)
                expect(page.locator("#log")).to_contain_text("<sicuser> hello from sic", timeout=20000)
                expect(page.locator("#users")).to_contain_text("sicuser")
                expect(page.locator("#users")).to_contain_text("ncuser")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            a.screenshot(path=str(screenshot), full_page=True)
            return [page.locator("#log li").all_inner_texts() for page in (a, b)]
        finally:
            browser.close()


@pytest_twisted.ensureDeferred
async def test_two_pages_an_irc_client_and_nc_in_one_room(tmp_path: Path) -> None:
    server = ChatServer()
    root = Resource()
    root.putChild(b"chat", chat_websocket_resource(server, max_per_ip=None))
    root.putChild(b"chat.html", chat_page_resource())
    web = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    chat = track(ChatFactory(server, max_per_ip=None))
    chat_port = reactor.listenTCP(0, chat, interface="127.0.0.1")
    irc = track(IRCFactory(server, max_per_ip=None))
    irc_port = reactor.listenTCP(0, irc, interface="127.0.0.1")
    sic = None
    try:
        nc = await join(chat_port.getHost().port, "ncuser")
        sic = spawn(["/usr/bin/sic", "-h", "127.0.0.1", "-p", str(irc_port.getHost().port), "-n", "sicuser"],
                    stdin=None, env={"HOME": str(tmp_path)})
        await sic.wait_for(rb"001 \(sicuser\)").addTimeout(15, reactor)
        sic.transport.write(b":j #lobby\n")
        await nc.wait_for(r"^\*\*\* join: sicuser joined lobby$")

        screenshot = ARTIFACTS / "chat-page.png"
        url = f"http://127.0.0.1:{web.getHost().port}/chat.html"
        pages = threads.deferToThread(browse, url, screenshot)

        await nc.wait_for(r"^\[lobby\] <网页甲> hello from page A$")
        await nc.wait_for(r"^\[lobby\] \* webB waves from page B$")
        await sic.wait_for("<网页甲> hello from page A".encode()).addTimeout(20, reactor)
        nc.transport.write(b"hello from nc\n")
        sic.transport.write(b"hello from sic\n")  # sic's default channel after :j
        await nc.wait_for(r"^\[lobby\] <sicuser> hello from sic$")
        await sic.wait_for(b"<ncuser> hello from nc").addTimeout(20, reactor)
        logs = await pages
        print(f"chat page screenshot: {screenshot}")
        assert screenshot.stat().st_size > 0
        for log in logs:
            assert "<ncuser> hello from nc" in log and "<sicuser> hello from sic" in log
        sic.transport.write(b":QUIT :done\n")
        await nc.wait_for(r"^\*\*\* leave: sicuser left lobby \(quit: done\)$")
        nc.transport.loseConnection()
        await nc.lost
    finally:
        if sic is not None:
            await ended(sic)
        await web.stopListening()
        await stop_tracked(chat, chat_port)
        await stop_tracked(irc, irc_port)
