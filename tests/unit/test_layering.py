"""The house of SPEC §2, read from the source: who may import whom (TYPE_CHECKING imports included), where Discord
markup may be written, no import circles, no production file over 400 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGNOSTIC = ("bot.core", "bot.store", "bot.runware", "bot.simulator", "bot.web")
FORBIDDEN_BELOW_UI = ("discord", "bot.ui", "cogs")
MARKUP = ("<@", "<#", "<t:")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    files = [*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").rglob("*.py")]
    return {_module_name(p): p for p in sorted(files)}


SOURCES = _sources()


def _imports(module: str, path: Path) -> set[str]:
    """Every module this one imports, anywhere in the file (TYPE_CHECKING blocks and function bodies too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}  # `from bot.ui import texts` imports bot.ui.texts
    return names


def _is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _project_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, path in SOURCES.items():
        edges[module] = {name for name in _imports(module, path) if name in SOURCES and name != module}
    return edges


def _string_literals(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


@pytest.mark.parametrize("module", [m for m in SOURCES if any(_is_under(m, p) for p in AGNOSTIC)])
def test_discord_agnostic_packages_import_nothing_of_discord(module: str) -> None:
    bad = sorted(
        name for name in _imports(module, SOURCES[module]) if any(_is_under(name, f) for f in FORBIDDEN_BELOW_UI)
    )
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", [m for m in SOURCES if any(_is_under(m, p) for p in AGNOSTIC)])
def test_discord_agnostic_packages_write_no_discord_markup(module: str) -> None:
    bad = [(line, text) for line, text in _string_literals(SOURCES[module]) if any(m in text for m in MARKUP)]
    assert not bad, f"{module} writes Discord markup at {bad}"


@pytest.mark.parametrize("module", [m for m in SOURCES if _is_under(m, "bot.ui")])
def test_ui_never_imports_cogs(module: str) -> None:
    assert not [n for n in _imports(module, SOURCES[module]) if _is_under(n, "cogs")]


@pytest.mark.parametrize("module", [m for m in SOURCES if _is_under(m, "cogs")])
def test_cogs_hold_no_sql_or_http(module: str) -> None:
    roots = {name.split(".")[0] for name in _imports(module, SOURCES[module])}
    assert not roots & {"aiosqlite", "sqlite3", "asyncpg", "aiohttp", "requests"}
    text = SOURCES[module].read_text(encoding="utf-8")
    assert "execute(" not in text and "fetchall(" not in text and "fetchone(" not in text


def test_no_import_circles() -> None:
    """Tarjan's strongly connected components over the project's own import graph (TYPE_CHECKING included)."""
    edges = _project_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    # A package importing its own submodules (`bot.ui` → `bot.ui.texts` → `bot.ui`) would show up here too.
    assert circles == []


@pytest.mark.parametrize("module", list(SOURCES))
def test_no_production_file_over_400_lines(module: str) -> None:
    lines = SOURCES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{SOURCES[module].relative_to(ROOT)} has {lines} lines"


def test_the_rules_catch_what_they_are_for(tmp_path: Path) -> None:
    """The readers above see a TYPE_CHECKING import, a relative import and markup in a string (so they can fail)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.ui import texts\nfrom . import x\n"
        "TEXT = f'<#{1}>'\nOTHER = '<t:1:R>'\n",
        encoding="utf-8",
    )
    found = _imports("bot.core.probe", probe)
    assert "bot.ui.texts" in found and "bot.core.x" in found
    assert sorted(text for _, text in _string_literals(probe) if any(m in text for m in MARKUP)) == ["<#", "<t:1:R>"]


def test_agnostic_packages_import_with_discord_blocked() -> None:
    """Import every Discord-agnostic module with `discord` made unimportable, in a fresh interpreter."""
    modules = [m for m in SOURCES if any(_is_under(m, p) for p in AGNOSTIC)]
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'discord' or name.startswith('discord.'):\n"
        "            raise ImportError('discord is blocked for the core: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
