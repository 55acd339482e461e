"""The package's layout rules that a reader can check by eye, checked by machine.

No SQL in views (STYLE.md item 1): a module under ``portal/views/`` parses the request, calls a
service function and renders. It never imports SQLAlchemy and never builds or runs a query
(``select``/``update``/``insert``/``delete`` calls, ``.execute``/``.scalars``/``.scalar``/
``.query``) nor opens a transaction on the store (``…store.session()``/``.read()``); models
may appear as types. The service modules
(:mod:`portal.accounts`, :mod:`portal.attempts`, :mod:`portal.disconnect`, :mod:`portal.store`…)
do. Read from the syntax trees, so nothing is imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VIEWS = ROOT / "portal" / "views"

#: Query builders: a call of one of these names (bare or as an attribute) is SQL.
QUERY_BUILDERS = frozenset({"select", "update", "insert", "delete", "text", "bindparam"})
#: Methods that run SQL on a session or connection.
QUERY_RUNNERS = frozenset({"execute", "scalars", "scalar", "query"})
#: Methods that open a transaction on the portal's store.
STORE_TRANSACTIONS = frozenset({"session", "read", "read_connection"})

#: View modules that still hold SQL, each with who removes it. The integrator empties this.
EXPECTED_SQL = {
    # Removed by the proxy performance work (its branch moves the account query of
    # /api/v1/proxy into portal/proxy.py).
    "proxy.py": "removed by the proxy performance work",
}


def sql_in(path: Path) -> list[str]:
    """``"line N: what"`` for every import of SQLAlchemy and every query built or run in the
    module at ``path``."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "sqlalchemy"
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if not node.level and module.split(".")[0] == "sqlalchemy":
                names = sorted(a.name for a in node.names)
                found.append(f"line {node.lineno}: from {module} import {names}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if isinstance(func, ast.Name) and name in QUERY_BUILDERS:
                found.append(f"line {node.lineno}: {name}(…)")
            elif isinstance(func, ast.Attribute) and name in QUERY_RUNNERS:
                found.append(f"line {node.lineno}: .{name}(…)")
            elif (
                isinstance(func, ast.Attribute)
                and name in STORE_TRANSACTIONS
                and isinstance(func.value, ast.Attribute)
                and func.value.attr == "store"
            ):
                found.append(f"line {node.lineno}: .store.{name}()")
    return sorted(found, key=lambda line: int(line.split()[1].rstrip(":")))


def view_modules() -> list[Path]:
    return sorted(VIEWS.glob("*.py"))


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            id=p.name,
            marks=[pytest.mark.xfail(strict=True, reason=EXPECTED_SQL[p.name])]
            if p.name in EXPECTED_SQL
            else [],
        )
        for p in view_modules()
    ],
)
def test_no_sql_in_views(path: Path) -> None:
    found = sql_in(path)
    assert not found, f"SQL in the view module {path.relative_to(ROOT)}:\n" + "\n".join(found)


def test_the_check_finds_sql(tmp_path: Path) -> None:
    """The checker itself: each form of SQL a view could hold is reported; service calls and
    the Flask session are not."""
    module = tmp_path / "view.py"
    module.write_text(
        "from sqlalchemy import select\n"
        "import sqlalchemy.orm\n"
        "from ..store import ConnectedAccount, utcnow\n"
        "from flask import session\n"
        "def view(state):\n"
        "    q = select(ConnectedAccount)\n"
        "    with state.store.read() as db:\n"
        "        db.execute(q)\n"
        "        db.scalars(q)\n"
        "    session.get('x')\n"
        "    accounts.user_accounts(state.store, 'u', project='p')\n"
    )
    assert sql_in(module) == [
        "line 1: from sqlalchemy import ['select']",
        "line 2: import sqlalchemy.orm",
        "line 6: select(…)",
        "line 7: .store.read()",
        "line 8: .execute(…)",
        "line 9: .scalars(…)",
    ]
    assert all(p.name in {v.name for v in view_modules()} for p in map(Path, EXPECTED_SQL))


# Function lengths: tests/test_layout_lengths.py.
