"""Every test says what it guards, in a docstring: the house rule, so that a reader of a failure knows what
broke without reading the test's body, and a reviewer can hold the asserts to what the docstring claims."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def undocumented(source: str) -> list[str]:
    """The names of the test functions in ``source`` (module level or in a class) without a docstring."""
    return [node.name for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
            and not ast.get_docstring(node)]


def test_the_check_finds_a_test_without_a_docstring() -> None:
    """The check below is not vacuous: it names a bare test, a bare one in a class, and passes a documented one
    and a helper that is not a test."""
    source = '''
def test_bare(): assert 1
async def test_documented():
    """Says what it guards."""
class TestGroup:
    def test_bare_in_a_class(self): pass
def helper(): pass
'''
    assert undocumented(source) == ["test_bare", "test_bare_in_a_class"]


def test_every_test_function_has_a_docstring() -> None:
    """No test module under tests/ has a test function without a docstring; the failure lists each by file."""
    missing = [f"{path.relative_to(TESTS)}::{name}" for path in sorted(TESTS.rglob("test_*.py"))
               for name in undocumented(path.read_text(encoding="utf-8"))]
    assert missing == [], "tests without a docstring saying what they guard:\n" + "\n".join(missing)
