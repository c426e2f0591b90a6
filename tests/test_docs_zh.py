"""
The Chinese tutorial mirrors the English one page by page: same examples,
same code, same commands; and every relative link in both resolves.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from tests.helpers import ROOT

ENGLISH = ROOT / "docs" / "tutorial"
CHINESE = ROOT / "docs" / "zh" / "tutorial"
PAGES = sorted(p.name for p in ENGLISH.glob("*.md"))
BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```", re.S)
EXAMPLE = re.compile(r"docs/examples/([\w.]+\.py)")
CONSOLE = re.compile(r"```console\n(.*?)```", re.S)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def commands(text: str) -> list[str]:
    return [line for block in CONSOLE.findall(text) for line in block.splitlines() if line.startswith("$ ")]


def test_every_english_page_has_its_chinese_counterpart() -> None:
    assert PAGES
    assert sorted(p.name for p in CHINESE.glob("*.md")) == PAGES


@pytest.mark.parametrize("name", PAGES)
def test_both_pages_show_the_same_examples_code_and_commands(name: str) -> None:
    english, chinese = (ENGLISH / name).read_text(), (CHINESE / name).read_text()
    assert set(EXAMPLE.findall(chinese)) == set(EXAMPLE.findall(english))
    assert [b["path"] for b in BLOCK.finditer(chinese)] == [b["path"] for b in BLOCK.finditer(english)]
    for block in BLOCK.finditer(chinese):
        assert (ROOT / block["path"]).read_text() == block["code"], f"zh/{name}: {block['path']} differs from the file"
    assert chinese.count("```python") == len(list(BLOCK.finditer(chinese)))
    assert commands(chinese) == commands(english)
    assert re.search(r"[\u4e00-\u9fff]", chinese), f"zh/{name} has no Chinese"


COMMENTS = re.compile(
    r"<!-- file: (?P<path>\S+) -->\n```python\n.*?```(?:\n\n<!-- comments: (?P=path) -->\n(?P<notes>.*?)<!-- /comments -->)?", re.S
)


def comment_lines(path: Path) -> list[int]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return [token.start[0] for token in tokens if token.type == tokenize.COMMENT]


@pytest.mark.parametrize("name", PAGES)
def test_every_comment_of_the_code_is_translated(name: str) -> None:
    for block in COMMENTS.finditer((CHINESE / name).read_text()):
        translated = [int(n) for n in re.findall(r"^- 第 (\d+) 行：\S", block["notes"] or "", re.M)]
        assert translated == comment_lines(ROOT / block["path"]), f"zh/{name}: the notes after {block['path']}"


def test_the_indexes_link_each_other() -> None:
    zh_index = (ROOT / "docs" / "zh" / "README.md").read_text()
    zh_tutorial = (CHINESE / "README.md").read_text()
    for name in PAGES:
        if name != "README.md":
            assert f"(tutorial/{name})" in zh_index, f"docs/zh/README.md does not link tutorial/{name}"
            assert f"({name})" in zh_tutorial
    assert "../zh/tutorial/README.md" in (ENGLISH / "README.md").read_text()
    assert "docs/zh/README.md" in (ROOT / "README.md").read_text()


def test_the_protocols_and_the_operations_guides_have_chinese_quick_references() -> None:
    zh = ROOT / "docs" / "zh"
    index = (zh / "README.md").read_text()
    for name in ["chat.md", "echo.md", "files.md", "http.md", "irc.md", "websocket.md"]:  # the specs of December 2026
        spec = ROOT / "docs" / "protocols" / name
        assert (zh / spec.name).exists(), f"no Chinese quick reference for docs/protocols/{spec.name}"
        assert f"({spec.name})" in index, f"docs/zh/README.md does not link {spec.name}"
        assert f"../protocols/{spec.name}" in (zh / spec.name).read_text(), f"zh/{spec.name} does not link its spec"
    operations = (zh / "operations.md").read_text()
    assert "../operations.md" in operations and "../running.md" in operations
    assert "(operations.md)" in index


DOCS = sorted({*ENGLISH.glob("*.md"), *(ROOT / "docs" / "zh").rglob("*.md")})


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: broken link {target}"
