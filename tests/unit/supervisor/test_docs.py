"""The docs exist, the README links them, and their relative links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = ["architecture.md", "configuration.md", "operations.md", "local-bot-api.md",
        "troubleshooting.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_readme_links_every_doc_and_keeps_its_two_command_start() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in DOCS:
        assert f"(docs/{name})" in readme, name
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines() == [
        line for line in first_block.splitlines() if line.startswith("./setup.sh ")]
    assert len(first_block.splitlines()) == 2


@pytest.mark.parametrize("document", ["README.md", *(f"docs/{name}" for name in DOCS)])
def test_relative_links_resolve(document: str) -> None:
    path = ROOT / document
    for target, _anchor in LINK.findall(path.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (path.parent / target).exists(), f"{document} links to missing {target}"


def test_troubleshooting_covers_the_common_problems() -> None:
    text = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8").lower()
    for topic in ("fetching metadata", "no peers", "firewall", "listen_port", "disk full",
                  "already running", "fatal"):
        assert topic in text, topic
