"""The packages depend on each other in one direction only: the engine (signaling, media) knows nothing of
the server; the server's domain knows nothing of its faces (the REST API and the pages); the faces know
nothing of each other; only the composition root (the app factory and the command line) sees them all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("signaling", "media", "server", "web")
COMPOSITION_ROOT = {"server.app", "server.cli", "server.bench", "server.bench_mixed"}


def layer(module: str) -> str:
    """The layer a module belongs to, named by what the rules below say of it."""
    if module in COMPOSITION_ROOT:
        return "root"
    if module == "server.api" or module.startswith("server.api."):
        return "api"
    return module.split(".")[0]


# What each layer may import from our own packages; anything not listed is forbidden.
ALLOWED = {
    "signaling": {"signaling"},
    "media": {"media", "signaling"},
    "server": {"server", "signaling", "media"},
    "api": {"api", "server", "signaling", "media"},
    "web": {"web", "server", "signaling"},
    "root": {"root", "api", "server", "signaling", "media", "web"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module of ours that ``path`` imports, anywhere in it (functions and TYPE_CHECKING too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from . import audit`` names a module; ``from .x import y`` names x
            names = [f"{target}.{alias.name}" for alias in node.names] if not node.module else [target]
            found += [(node.lineno, t) for t in names]
    return [(line, target) for line, target in found if target.split(".")[0] in PACKAGES]


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "migrations" not in p.parts)


def test_the_rules_can_fail() -> None:
    """The checker sees a forbidden import when there is one: a relative import out of signaling into server
    resolves to server, and server domain code importing a page is web."""
    assert layer("server.api.referrals") == "api" and layer("server.referrals") == "server"
    assert "server" not in ALLOWED[layer("signaling.connection")]
    assert "web" not in ALLOWED[layer("server.referrals")] and "api" not in ALLOWED[layer("web.pages")]


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path: Path) -> None:
    """No module imports from a layer above it (or from a sibling face)."""
    here = layer(module_name(path))
    wrong = [f"line {line}: {target}" for line, target in imports_of(path)
             if layer(target) not in ALLOWED[here]]
    assert not wrong, f"{module_name(path)} ({here}) imports what it may not: {wrong}"
