"""
Real IRC clients from Debian against the IRC service, with an ``nc``-style
line-chat user in the same room: each registers, joins, talks both ways,
changes nick and quits.  Each client runs with its own temporary HOME and is
started and stopped by PID.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from tests.chat.test_loopback import join
from tests.helpers import ProcessRun, spawn


async def until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> object:
    """Poll ``condition`` (a file a client writes) until it holds; fail after ``timeout`` seconds."""
    deadline = reactor.seconds() + timeout
    while True:
        result = condition()
        if result:
            return result
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.05, lambda: None)


async def ended(run: ProcessRun, timeout: float = 10.0) -> None:
    """Wait for ``run`` to exit; terminate it (by PID) if it does not."""
    try:
        await until(lambda: run.ended.called, "the client to exit", timeout)
    except AssertionError:
        run.terminate()
        await until(lambda: run.ended.called, "the client to exit after SIGTERM", timeout)


def needs(program: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(program) is None, reason=f"{program} is not installed")


@needs("sic")
@pytest_twisted.ensureDeferred
async def test_sic(irc_net, tmp_path: Path) -> None:
    nc = await join(irc_net.chat, "ncuser")
    sic = spawn(["/usr/bin/sic", "-h", "127.0.0.1", "-p", str(irc_net.irc), "-n", "sicuser"], stdin=None,
                env={"HOME": str(tmp_path)})
    try:
        await sic.wait_for(rb"001 \(sicuser\)").addTimeout(15, reactor)
        sic.transport.write(b":j #lobby\n")
        await nc.wait_for(r"^\*\*\* join: sicuser joined lobby$")
        nc.transport.write("hello sic, 你好\n".encode())
        await sic.wait_for("<ncuser> hello sic, 你好".encode()).addTimeout(15, reactor)
        sic.transport.write(":m #lobby hello nc from sic\n".encode())
        await nc.wait_for(r"^\[lobby\] <sicuser> hello nc from sic$")
        sic.transport.write(b":NICK sic2\n")  # ":" + anything else: sent as is
        await nc.wait_for(r"^\*\*\* nick: sicuser is now sic2$")
        sic.transport.write(b":QUIT :sic says bye\n")
        await nc.wait_for(r"^\*\*\* leave: sic2 left lobby \(quit: sic says bye\)$")
    finally:
        await ended(sic)
    nc.transport.loseConnection()
    await nc.lost


def _fifo_write(path: Path, line: str) -> bool:
    """Write one line to a client's FIFO once it is there and read; False until then."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except (FileNotFoundError, OSError):
        return False
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    return True


def _has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text("utf-8", "replace")


@needs("ii")
@pytest_twisted.ensureDeferred
async def test_ii(irc_net, tmp_path: Path) -> None:
    nc = await join(irc_net.chat, "ncuser")
    base = tmp_path / "irc"
    ii = spawn(["/usr/bin/ii", "-s", "127.0.0.1", "-p", str(irc_net.irc), "-n", "iiuser", "-i", str(base)],
               stdin=None, env={"HOME": str(tmp_path)})
    server_in, channel = base / "127.0.0.1" / "in", base / "127.0.0.1" / "#lobby"
    try:
        await until(lambda: _has(base / "127.0.0.1" / "out", "Welcome to the netsuite IRC network"), "ii registered")
        await until(lambda: _fifo_write(server_in, "/j #lobby"), "ii's FIFO")
        await nc.wait_for(r"^\*\*\* join: iiuser joined lobby$")
        nc.transport.write("hello ii, 你好\n".encode())
        await until(lambda: _has(channel / "out", "<ncuser> hello ii, 你好"), "the nc line in ii's #lobby/out")
        await until(lambda: _fifo_write(channel / "in", "hello nc from ii"), "ii's #lobby FIFO")
        await nc.wait_for(r"^\[lobby\] <iiuser> hello nc from ii$")
        assert _fifo_write(server_in, "/n ii2")
        await nc.wait_for(r"^\*\*\* nick: iiuser is now ii2$")
        assert _fifo_write(server_in, "/q ii says bye")
        await nc.wait_for(r"^\*\*\* leave: ii2 left lobby \(quit: ii says bye\)$")
    finally:
        await ended(ii)
    nc.transport.loseConnection()
    await nc.lost


class Tmux:
    """A private tmux server (its own socket directory) running one program; stopped by PID."""

    def __init__(self, directory: Path, command: list[str]) -> None:
        import shlex
        import subprocess

        self.run = subprocess.run
        self.env = dict(os.environ, TMUX_TMPDIR=str(directory), HOME=str(directory), TERM="xterm")
        self.base = ["tmux", "-L", "netsuite-test"]
        self._tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "50", shlex.join(command))
        self.server_pid, self.pane_pid = (int(x) for x in self._tmux("display", "-p", "-t", "t", "#{pid} #{pane_pid}").split())

    def _tmux(self, *args: str) -> str:
        return self.run([*self.base, *args], env=self.env, capture_output=True, text=True, timeout=10, check=True).stdout

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        self._tmux("send-keys", "-t", "t", "Enter")

    def screen(self) -> str:
        try:
            return self._tmux("capture-pane", "-p", "-t", "t", "-S", "-200")
        except Exception:
            return ""

    def stop(self) -> None:
        import signal

        for pid in (self.pane_pid, self.server_pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@needs("irssi")
@needs("tmux")
@pytest_twisted.ensureDeferred
async def test_irssi_under_tmux(irc_net, tmp_path: Path) -> None:
    nc = await join(irc_net.chat, "ncuser")
    irssi = Tmux(tmp_path, ["irssi", f"--home={tmp_path / 'irssi'}", "-c", "127.0.0.1", "-p", str(irc_net.irc),
                            "-n", "irssiuser"])
    try:
        await until(lambda: "Welcome to the netsuite IRC network" in irssi.screen(), "irssi to register")
        irssi.type("/join #lobby")
        await nc.wait_for(r"^\*\*\* join: irssiuser joined lobby$")
        await until(lambda: "Total of 2 nicks" in irssi.screen(), "irssi's names list")
        nc.transport.write("hello irssi, 你好\n".encode())
        await until(lambda: "ncuser> hello irssi" in irssi.screen(), "the nc line in irssi")
        irssi.type("hello nc from irssi")
        await nc.wait_for(r"^\[lobby\] <irssiuser> hello nc from irssi$")
        irssi.type("/me waves")
        await nc.wait_for(r"^\[lobby\] \* irssiuser waves$")
        irssi.type("/nick irssi2")
        await nc.wait_for(r"^\*\*\* nick: irssiuser is now irssi2$")
        irssi.type("/quit irssi says bye")
        await nc.wait_for(r"^\*\*\* leave: irssi2 left lobby \(quit: irssi says bye\)$")
        await until(lambda: _gone(irssi.pane_pid), "irssi to exit")
    finally:
        irssi.stop()
        await until(lambda: _gone(irssi.server_pid), "tmux to exit")
    nc.transport.loseConnection()
    await nc.lost


@needs("weechat-headless")
@pytest_twisted.ensureDeferred
async def test_weechat_headless(irc_net, tmp_path: Path) -> None:
    nc = await join(irc_net.chat, "ncuser")
    home = tmp_path / "weechat"
    setup = ";".join([
        "/set logger.file.flush_delay 0",  # the log is how the test reads what WeeChat shows
        f"/server add ns 127.0.0.1/{irc_net.irc} -notls",
        "/set irc.server.ns.nicks weeuser",
        "/set irc.server.ns.autojoin #lobby",
        "/connect ns",
    ])
    wee = spawn(["/usr/bin/weechat-headless", "--dir", str(home), "--run-command", setup], stdin=None,
                env={"HOME": str(tmp_path)})
    log = home / "logs" / "irc.ns.#lobby.weechatlog"

    def command(buffer: str, text: str) -> bool:
        # WeeChat's FIFO plugin: "BUFFER *TEXT" types TEXT into BUFFER.
        fifos = list(home.glob("weechat_fifo_*"))
        return bool(fifos) and _fifo_write(fifos[0], f"{buffer} *{text}")

    try:
        await nc.wait_for(r"^\*\*\* join: weeuser joined lobby$")
        nc.transport.write("hello weechat, 你好\n".encode())
        await until(lambda: _has(log, "ncuser\thello weechat, 你好"), "the nc line in WeeChat's #lobby log")
        await until(lambda: command("irc.ns.#lobby", "hello nc from weechat"), "WeeChat's FIFO")
        await nc.wait_for(r"^\[lobby\] <weeuser> hello nc from weechat$")
        assert command("irc.ns.#lobby", "/nick wee2")
        await nc.wait_for(r"^\*\*\* nick: weeuser is now wee2$")
        assert command("irc.ns.#lobby", "/quit weechat says bye")
        await nc.wait_for(r"^\*\*\* leave: wee2 left lobby \(quit: weechat says bye\)$")
    finally:
        await ended(wee)
    nc.transport.loseConnection()
    await nc.lost
