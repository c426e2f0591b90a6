"""The narrated demos run to the end by themselves, read in order, and narrate in English or Chinese."""

from __future__ import annotations

import re
import string

import pytest
import pytest_twisted

from suite.demo import DEMOS
from suite.demo.lang import LANGUAGES, Text, pick_language
from tests.helpers import spawn

EXPECTED = {
    ("echo", "en"): ["fourth got: error: too many connections (limit 3)",
                     "probe sent a 60000-byte datagram; it came back with 60000 bytes"],
    ("echo", "zh"): ["fourth 收到：error: too many connections (limit 3)",
                     "probe 发送了 60000 字节的数据报；回显回来 60000 字节"],
    ("chat", "en"): ["carol sees  | [history lobby] <alice> hi bob! anyone else around?",
                     "carol sees  | [private] <alice -> carol> welcome! bob waves a lot",
                     "carol sees  | *** leave: alice left lobby (quit: lunch time)"],
    ("chat", "zh"): ["carol 看到 | [history lobby] <alice> hi bob! anyone else around?",
                     "carol 看到 | *** leave: alice left lobby (quit: lunch time)"],
    ("upload", "en"): ["resuming at byte 2097152 of 6291456", "sha256 matches: yes", "identical: yes"],
    ("upload", "zh"): ["从第 2097152 字节继续，共 6291456 字节", "sha256 一致：是", "内容完全相同：是"],
}


async def narration(name: str, lang: str) -> str:
    run = spawn(["python", "-m", "suite.demo", "--lang", lang, name])
    assert await run.ended == 0, run.err.decode()
    return run.out.decode()


def steps(output: str) -> list[tuple[str, list[str]]]:
    """The output as (step narration, lines printed under it)."""
    found: list[tuple[str, list[str]]] = []
    for line in output.splitlines():
        if line.startswith("== "):
            found.append((line[3:], []))
        elif line.strip():
            found[-1][1].append(line.strip())
    return found


def under(found: list[tuple[str, list[str]]], step: str) -> list[str]:
    """The lines printed under the step whose narration is ``step``."""
    (lines,) = [lines for header, lines in found if header == step]
    return lines


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", DEMOS)
@pytest_twisted.ensureDeferred
async def test_demo(name: str, lang: str) -> None:
    output = await narration(name, lang)
    for line in EXPECTED[name, lang]:
        assert line in output, output
    done = Text(lang)(f"{name}.done")
    assert output.rstrip().splitlines()[-1] == f"== {done}"
    if lang == "zh":
        narrated = [header for header, _ in steps(output)]
        assert all(re.search(r"[\u4e00-\u9fff]", header) for header in narrated), narrated


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest_twisted.ensureDeferred
async def test_chat_demo_shows_each_event_under_its_step(lang: str) -> None:
    text = Text(lang)
    found = steps(await narration("chat", lang))

    def sees(who: str, line: str) -> str:
        return text("sees", who=who, line=line).strip()

    assert sees("alice", "[lobby] * bob waves") in under(found, text("chat.bob_acts"))
    assert sees("bob", "[lobby] * bob waves") in under(found, text("chat.bob_acts"))
    assert sees("carol", "[history lobby] * bob waves") in under(found, text("chat.carol_arrives"))
    assert sees("alice", "*** leave: bob left lobby (joined games)") in under(found, text("chat.rooms"))
    assert sees("carol", "*** leave: alice left lobby (quit: lunch time)") in under(found, text("chat.quit"))
    # Each step's lines were caused by that step: nobody's screen lags behind.
    for header, lines in found:
        if header == text("chat.private"):
            assert not [line for line in lines if line.startswith(text("sees", who="bob", line="").strip())]
    # The forged line, as sent and as the others saw it.
    forged = under(found, text("chat.forge"))
    assert forged[0] == text("sends", who="alice", line=r"'fake\r[lobby] <admin> reboot now\x1b[2J'").strip()
    assert sees("carol", "[lobby] <alice> fake\ufffd[lobby] <admin> reboot now\ufffd[2J") in forged
    admin = [line for _, lines in found for line in lines if "<admin>" in line]
    assert all(line == forged[0] or "<alice> fake\ufffd[lobby] <admin>" in line for line in admin), admin


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest_twisted.ensureDeferred
async def test_chat_demo_introduces_every_user_before_they_speak(lang: str) -> None:
    found = steps(await narration("chat", lang))
    for user in ("alice", "bob", "carol"):
        introduced = next(i for i, (header, _) in enumerate(found) if header.startswith(user))
        spoke = next((i for i, (_, lines) in enumerate(found)
                      if any(f"<{user}" in line or f"* {user} " in line for line in lines)), len(found))
        assert introduced < spoke, (user, found[introduced][0], found[spoke][0])


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest_twisted.ensureDeferred
async def test_echo_demo_introduces_every_client_it_names(lang: str) -> None:
    output = await narration("echo", lang)
    client = {"en": "Client '{}'", "zh": "客户端 '{}'"}[lang]
    for name in ("idle", "busy", "third", "fourth", "probe"):
        first = next(line for line in output.splitlines() if re.search(rf"\b{name}\b", line))
        assert first.startswith("== ") and client.format(name) in first, (name, first)


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    english, chinese = Text("en").messages, Text("zh").messages
    assert english.keys() == chinese.keys()

    def fields(template: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}

    assert {k: fields(v) for k, v in english.items()} == {k: fields(v) for k, v in chinese.items()}
    assert all(f"{name}.done" in english and f"summary.{name}" in english for name in DEMOS)


def test_chinese_narration_uses_the_terms_learners_know() -> None:
    chinese = " ".join(Text("zh").messages.values())
    for term in ("粘包/拆包", "回显", "昵称", "聊天室", "断点续传", "数据报"):
        assert term in chinese, term


@pytest.mark.parametrize(
    "requested, environ, expected",
    [
        (None, {}, "en"),
        (None, {"LANG": "zh_CN.UTF-8"}, "zh"),
        (None, {"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "zh"),
        (None, {"LANG": "zh_CN.UTF-8", "LC_ALL": "C.UTF-8"}, "en"),
        (None, {"LANG": "zh_TW.UTF-8"}, "zh"),
        ("en", {"LC_ALL": "zh_CN.UTF-8"}, "en"),
        ("zh", {"LANG": "C"}, "zh"),
    ],
)
def test_language_from_flag_or_locale(requested: str | None, environ: dict[str, str], expected: str) -> None:
    assert pick_language(requested, environ) == expected


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest_twisted.ensureDeferred
async def test_demo_list(lang: str) -> None:
    env = {"LANG": "zh_CN.UTF-8" if lang == "zh" else "en_US.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}
    run = spawn(["python", "-m", "suite.demo"], env=env)
    assert await run.ended == 0
    output = run.out.decode()
    assert output.startswith(Text(lang)("usage"))
    assert all(f"{name:8} {Text(lang)('summary.' + name)}" in output for name in DEMOS)
