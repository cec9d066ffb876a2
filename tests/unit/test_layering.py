"""Imports go one way: cogs → bot (Discord-aware) → bot (core). The core never imports discord."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISCORD_AWARE = {"app", "flow", "delivery", "status", "views", "tree", "moderation"}
CORE = sorted(
    p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
    for p in (ROOT / "bot").rglob("*.py")
    if p.stem not in DISCORD_AWARE and p.stem != "__main__"
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_without_discord() -> None:
    """Import every core module with `discord` made unimportable, in a fresh interpreter."""
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'discord' or name.startswith('discord.'):\n"
        "            raise ImportError('discord is blocked for the core: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {CORE!r}:\n"
        "    importlib.import_module(m)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("path", sorted((ROOT / "cogs").glob("*.py")), ids=lambda p: p.name)
def test_cogs_hold_no_sql_or_http(path: Path) -> None:
    assert not _imports(path) & {"aiosqlite", "sqlite3", "aiohttp", "requests"}
    assert "execute(" not in path.read_text(encoding="utf-8")


def test_core_never_imports_cogs() -> None:
    for path in (ROOT / "bot").rglob("*.py"):
        assert "cogs" not in _imports(path), path
