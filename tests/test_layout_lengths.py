"""No function in ``portal/`` is too long to hold in the head: every one is under
:data:`LIMIT` lines, counted from its ``def`` line to its last line (docstring, comments and
blank lines included; a nested function counts inside its parent and on its own).

The lengths are read from the syntax trees, so this runs in milliseconds and needs no import.
"""

from __future__ import annotations

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parent.parent / "portal"
LIMIT = 120

#: Temporary exceptions, ``(file under portal/, function name)``, each to be shortened; empty
#: since the connect views moved into the connect service (portal/attempts.py).
TEMPORARY_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()


def function_lengths() -> dict[tuple[str, str, int], int]:
    """``{(file under portal/, name, def line): length in lines}`` of every function."""
    lengths = {}
    for path in sorted(PORTAL.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                where = (path.relative_to(PORTAL).as_posix(), node.name, node.lineno)
                lengths[where] = node.end_lineno - node.lineno + 1
    return lengths


def test_every_function_is_under_the_limit() -> None:
    too_long = sorted(
        f"portal/{file}:{line} {name}: {length} lines"
        for (file, name, line), length in function_lengths().items()
        if length >= LIMIT and (file, name) not in TEMPORARY_EXCEPTIONS
    )
    assert not too_long, f"split these functions (under {LIMIT} lines each): {too_long}"


def test_no_stale_exception() -> None:
    still_long = {
        (file, name) for (file, name, _), length in function_lengths().items() if length >= LIMIT
    }
    stale = sorted(TEMPORARY_EXCEPTIONS - still_long)
    assert not stale, (
        f"these functions are now under {LIMIT} lines (or gone): remove them from "
        f"TEMPORARY_EXCEPTIONS in tests/test_layout_lengths.py: {stale}"
    )


def test_lengths_are_measured() -> None:
    """The walk finds the package's functions (a wrong root would make the limit vacuous)."""
    lengths = function_lengths()
    assert ("openapi.py", "build") in {(file, name) for file, name, _ in lengths}
    assert len(lengths) > 500
