"""The password hashes the mall makes, and the cheap ones the test users are given (`tests/factories.py`)."""

from argon2 import Type, extract_parameters

from mall.core import passwords
from tests.factories import PASSWORD, password_hash


def test_the_mall_hashes_passwords_with_argon2id_at_its_production_cost() -> None:
    params = extract_parameters(passwords.hash_password("a-new-password-2026"))
    assert params.type is Type.ID
    assert (params.time_cost, params.memory_cost, params.parallelism) == (2, 19456, 1)


def test_a_stored_hash_is_checked_at_the_cost_it_names() -> None:
    cheap = password_hash()
    assert extract_parameters(cheap).memory_cost == 8
    assert passwords.verify_password(cheap, PASSWORD)
    assert not passwords.verify_password(cheap, PASSWORD + "x")
    assert not passwords.verify_password("not a hash", PASSWORD)
