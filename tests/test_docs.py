"""The README and docs/: every relative link points to a file (and heading) that
exists, and every command in a code block names only flags its program has."""
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# our programs, however they are started: python X.py, .venv/bin/python X.py, torchrun ... X.py
PROGRAM = re.compile(r"(?:^|[\s/])((?:bench/|tests/)?(?:rlef|eval|sandbox|data|easyset|\w+)\.py)\b(.*)")


def split_blocks(page: Path) -> tuple[str, list[list[str]]]:
    """A page's prose (code blocks removed) and its fenced code blocks, as lines. A
    fence is a line that starts with ``` (a ``` inside a line, as in $'\\n```\\n', is not),
    closed by a line of as many backticks."""
    prose, blocks, block, fence = [], [], None, ""
    for line in page.read_text().splitlines():
        ticks = re.match(r"\s*(`{3,})", line)
        if ticks and block is None:
            block, fence = [], ticks.group(1)
        elif ticks and line.strip() == ticks.group(1) and len(ticks.group(1)) >= len(fence):
            blocks.append(block)  # (a ```` fence holds ``` lines)
            block = None
        elif block is None:
            prose.append(line)
        else:
            block.append(line)
    return "\n".join(prose), blocks


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {github_anchor(line.lstrip("#")) for line in split_blocks(page)[0].splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_point_to_files_and_headings_that_exist(page):
    broken = []
    for target in LINK.findall(split_blocks(page)[0]):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no such heading)")
    assert broken == [], f"{page.name}: {broken}"


def commands(page: Path) -> list[tuple[str, list[str]]]:
    """(program, its flags) for each line of a shell code block that runs one of ours."""
    found = []
    for block in split_blocks(page)[1]:
        for line in "\n".join(block).replace("\\\n", " ").splitlines():
            match = PROGRAM.search(line)
            if not match or not (ROOT / match.group(1)).is_file() or match.group(1) == "tests/test_docs.py":
                continue
            rest = re.split(r"\s#|\||;|&&|>|\$\(", match.group(2))[0]
            try:
                words = shlex.split(rest)
            except ValueError:  # $'...' quoting and the like: take the words as they stand
                words = rest.split()
            found.append((match.group(1), [w.split("=")[0] for w in words if w.startswith("--")]))
    return found


@cache
def flags_of(program: str) -> frozenset[str]:
    p = subprocess.run([sys.executable, program, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{program} --help failed:\n{p.stderr[-2000:]}"
    return frozenset(re.findall(r"--[a-z0-9][a-z0-9-]*", p.stdout))


def test_every_command_in_the_readme_names_flags_its_program_has():
    shown = commands(ROOT / "README.md")
    assert {program for program, _ in shown} >= {"rlef.py", "eval.py", "sandbox.py"}
    unknown = [(program, flag) for program, flags in shown for flag in flags if flag not in flags_of(program)]
    assert unknown == []


def test_every_command_in_the_docs_names_flags_its_program_has():
    unknown = [(page.name, program, flag) for page in PAGES[1:] for program, flags in commands(page)
               for flag in flags if flag not in flags_of(program)]
    assert unknown == []
