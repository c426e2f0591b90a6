"""
The page at / in a real headless browser (Debian's chromium, driven by
Playwright): upload a file through the page (tus), see it listed, download
it, compare sha256; and an upload whose connection is reset in the middle,
resumed from the page.  The screenshots are kept in build/test-artifacts/.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from suite.files.memory import MemoryStore
from suite.web import WebSite
from tests.helpers import ROOT, stop_tracked, track

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "build" / "test-artifacts"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")


def drive_page(base: str, source: Path, downloads: Path, token: str | None) -> dict[str, Any]:
    """In a thread: the browser session (Playwright's sync API has its own loop)."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(accept_downloads=True)
            page.set_default_timeout(20_000)
            prompts = []

            def answer(dialog: Any) -> None:
                prompts.append(dialog.message)
                dialog.accept(token or "")

            page.on("dialog", answer)
            page.goto(base + "/")
            page.set_input_files("#file", str(source))
            page.click("#upload")
            page.wait_for_selector(f'tr[data-name="{source.name}"]')
            seen["status"] = page.inner_text("#status")
            seen["progress"] = page.eval_on_selector("#progress", "e => e.value")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
            with page.expect_download() as info:
                page.click(f'button[data-name="{source.name}"]')
            download = info.value
            target = downloads / download.suggested_filename
            download.save_as(str(target))
            seen["downloaded"] = target
            seen["prompts"] = prompts
        finally:
            browser.close()
    return seen


@pytest.mark.timeout(120)
@pytest.mark.parametrize("token", [None, "page-token"])
@pytest_twisted.ensureDeferred
async def test_upload_list_download_in_a_browser(tmp_path: Path, token: str | None) -> None:
    store = MemoryStore()
    site = track(WebSite(store, token=token.encode() if token else None))
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        source = tmp_path / "photo from the browser.bin"
        source.write_bytes(os.urandom(3_000_000))
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        base = f"http://127.0.0.1:{port.getHost().port}"
        seen = await threads.deferToThread(drive_page, base, source, downloads, token)
        assert seen["status"] == f"stored {source.name}"
        assert seen["progress"] == 100
        assert len(seen["prompts"]) == (1 if token else 0)  # the token is asked for once
        expected = hashlib.sha256(source.read_bytes()).hexdigest()
        assert (await store.stat(source.name)).sha256 == expected
        assert hashlib.sha256(seen["downloaded"].read_bytes()).hexdigest() == expected
        assert (ARTIFACTS / "web-page.png").stat().st_size > 0
    finally:
        await stop_tracked(site, port)


CHUNK = 8 * 1024 * 1024  # the page's bytes per PATCH (suite/web/static/app.js)


def cut_and_resume(base: str, source: Path) -> dict[str, Any]:
    """
    In a thread: upload ``source`` through the page, with the connection of
    its second PATCH reset; then reload the page (as after a closed tab) and
    upload the same file again, which must resume.
    """
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.on("request", lambda r: seen["requests"].append((r.method, r.headers.get("upload-offset"))))
            patches = []

            def cut_second_patch(route: Any) -> None:
                if route.request.method == "PATCH":
                    patches.append(route.request.headers.get("upload-offset"))
                    if len(patches) == 2:
                        route.abort("connectionreset")
                        return
                route.continue_()

            page.route("**/uploads/*", cut_second_patch)
            page.goto(base + "/")
            page.set_input_files("#file", str(source))
            page.click("#upload")
            page.wait_for_selector("#status.error")
            seen["cut"] = page.inner_text("#status")
            page.unroute("**/uploads/*")
            seen["requests"].append(("--- resumed ---", None))
            page.reload()
            page.set_input_files("#file", str(source))
            page.click("#upload")
            page.wait_for_selector(f'tr[data-name="{source.name}"]')
            seen["status"] = page.inner_text("#status")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web-page-resumed.png"), full_page=True)
        finally:
            browser.close()
    return seen


@pytest.mark.timeout(120)
@pytest_twisted.ensureDeferred
async def test_an_upload_cut_in_the_middle_resumes_from_the_page(tmp_path: Path) -> None:
    store = MemoryStore()
    site = track(WebSite(store))
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        source = tmp_path / "cut and resumed.bin"
        source.write_bytes(os.urandom(2 * CHUNK + 3_000_000))  # three PATCHes
        seen = await threads.deferToThread(cut_and_resume, f"http://127.0.0.1:{port.getHost().port}", source)
        assert seen["cut"] == "the connection failed"
        assert seen["status"] == f"stored {source.name}"
        assert (await store.stat(source.name)).sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        resumed = seen["requests"][seen["requests"].index(("--- resumed ---", None)) + 1:]
        tus = [(method, offset) for method, offset in resumed if method in ("HEAD", "POST", "PATCH")]
        # The page asked the server where the upload stood (tus HEAD) and sent only the rest.
        assert tus == [("HEAD", None), ("PATCH", str(CHUNK)), ("PATCH", str(2 * CHUNK))]
        # The server read the file once (plus headers and the page): the first chunk was not sent again.
        assert source.stat().st_size < site.counters.bytes_in < source.stat().st_size + 1_000_000
        assert (ARTIFACTS / "web-page-resumed.png").stat().st_size > 0
    finally:
        await stop_tracked(site, port)
