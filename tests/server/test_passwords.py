"""Password hashing with scrypt."""

from __future__ import annotations

import pytest

from server.passwords import ScryptParams, hash_password, needs_rehash, password_problem, verify_password

FAST = ScryptParams(n=2**10, r=8, p=1)


def test_right_password_verifies_and_wrong_does_not() -> None:
    stored = hash_password("correct horse battery", FAST)
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)


def test_same_password_hashes_differently_each_time() -> None:
    assert hash_password("same password", FAST) != hash_password("same password", FAST)


def test_hash_names_scheme_and_parameters_not_the_password() -> None:
    stored = hash_password("a secret phrase", FAST)
    assert stored.startswith("scrypt$1024$8$1$")
    assert "secret" not in stored


def test_default_parameters_are_memory_hard() -> None:
    """16 MiB per hash: 128 * n * r bytes."""
    params = ScryptParams()
    assert 128 * params.n * params.r >= 16 * 1024 * 1024
    assert verify_password("default params", hash_password("default params"))


@pytest.mark.parametrize(
    "stored", ["", "plain", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA", "scrypt$1024$8$1$!!$AAAA"])
def test_malformed_hash_never_verifies(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_weaker_hashes_ask_to_be_rehashed() -> None:
    assert needs_rehash(hash_password("pw for rehash", FAST))
    assert not needs_rehash("scrypt$16384$8$1$AAAA$AAAA")
    assert needs_rehash("garbage")


@pytest.mark.parametrize(("password", "problem"), [("short", True), ("long enough!", False)])
def test_new_password_length(password: str, problem: bool) -> None:
    assert (password_problem(password) is not None) is problem
