"""The README's fenced code blocks, by heading, for the tests that run them.

Every block of README.md is run by some test: a test claims one with
``@pytest.mark.readme("<heading>", <index>)`` (the heading's text without ``#``, and the
block's 0-based position under that heading). ``tests/test_readme.py`` fails when a block is
claimed by no test, or a claim names a block that no longer exists, so a README edit that adds
or breaks a snippet fails ``make test``.

Tests take a block's text as it is and may substitute only what a reader would: the ``…``
placeholders, secrets and URLs (:func:`fill` refuses a substitution whose original text is not
in the block, so the README cannot drift away from what is run).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    """One fenced block: the heading it sits under, its position there, language and text."""

    heading: str
    index: int
    lang: str
    code: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.heading, self.index)


def blocks(path: Path = README) -> list[Block]:
    """Every fenced block of ``path`` in order (``` fences; the info string is the language)."""
    found: list[Block] = []
    counts: dict[str, int] = {}
    heading = ""
    lines = path.read_text("utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang = line[3:].strip()
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            index = counts.get(heading, 0)
            counts[heading] = index + 1
            found.append(Block(heading, index, lang, "\n".join(body) + "\n"))
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
        i += 1
    return found


def block(heading: str, index: int = 0) -> Block:
    """The block at ``index`` under ``heading``.

    :raises LookupError: the README has no such block.
    """
    for candidate in blocks():
        if candidate.key == (heading, index):
            return candidate
    raise LookupError(f"README.md has no block {index} under {heading!r}")


def fill(code: str, replacements: dict[str, str]) -> str:
    """``code`` with each ``old`` replaced by ``new``.

    :raises AssertionError: an ``old`` text is not in ``code`` (the README changed: update the
        test with it, never silently run something else).
    """
    for old, new in replacements.items():
        assert old in code, f"README block no longer contains {old!r}:\n{code}"
        code = code.replace(old, new)
    return code


def inline_code(section: str, pattern: str) -> str:
    """The first inline code span (`` `…` ``) of README section ``section`` matching the
    regular expression ``pattern``; for values the prose gives rather than a block."""
    text = README.read_text("utf-8")
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 3)
    prose = re.sub(r"^```.*?^```", "", text[start : end if end != -1 else None], flags=re.S | re.M)
    for span in re.findall(r"`([^`]+)`", prose):
        if re.search(pattern, span):
            return " ".join(span.split())
    raise LookupError(f"no inline code matching {pattern!r} under {section!r}")


def claims(tests: Path = ROOT / "tests") -> list[tuple[tuple[str, int], str]]:
    """``((heading, index), "tests/<file>::<test>")`` for every ``pytest.mark.readme`` marker,
    read from the test files' syntax trees (no collection needed)."""
    found: list[tuple[tuple[str, int], str]] = []
    for path in sorted(tests.rglob("test_*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        # Module-level string constants (``SECTION = "…"``) may name the heading.
        names = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }

        def value(arg: ast.expr, names: dict[str, object] = names) -> object:
            if isinstance(arg, ast.Constant):
                return arg.value
            if isinstance(arg, ast.Name) and arg.id in names:
                return names[arg.id]
            return None

        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr == "readme"
                    and len(decorator.args) == 2
                ):
                    heading, index = (value(a) for a in decorator.args)
                    assert isinstance(heading, str) and isinstance(index, int), (path, node.name)
                    where = f"{path.relative_to(ROOT)}::{node.name}"
                    found.append(((heading, index), where))
    return found
