"""Every relative link and image in README.md and docs/**/*.md names a file or folder that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# [text](target) and ![alt](target), optionally with a "title"; <https://...> autolinks are not relative.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative_links(text: str) -> list[str]:
    text = FENCE.sub("", text)  # code blocks hold commands, not links
    targets = [match.group(1) for match in LINK.finditer(text)]
    return [target for target in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and target[0] != "#"]


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in relative_links(path.read_text()):
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    return broken


def test_docs_exist() -> None:
    assert (ROOT / "docs").is_dir()
    assert len(markdown_files()) > 1


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path) == [], f"{path.relative_to(ROOT)} links to missing files"


def test_a_broken_link_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("")
    page.write_text(
        "[ok](there.md) [ok too](there.md#part) [web](https://example.org) [anchor](#top)\n"
        "![figure](figures/missing.png) [gone](nowhere.md#x)\n```\n[in code](not-a-link.md)\n```\n"
    )
    assert broken_links(page) == ["figures/missing.png", "nowhere.md#x"]
