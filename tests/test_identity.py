"""Identity numbers of parties (command.matters.identity) on published examples."""

import doctest
from datetime import date

import pytest

from command.matters import identity
from command.matters.identity import (credit_code_error, id_number_error, mask_id_number,
                                      mask_phone, normalise_phone)

TODAY = date(2026, 12, 5)


@pytest.mark.parametrize("number", [
    "11010519491231002X",  # the example in GB 11643-1999
    "440524188001010014",  # the second example in GB 11643-1999
    "110101200001011013",  # built here with the MOD 11-2 rule
])
def test_valid_id_numbers(number):
    assert id_number_error(number, today=TODAY) is None


@pytest.mark.parametrize("number, reason", [
    ("110105194912310021", "check character"),  # GB 11643's example with a wrong check digit
    ("11010519491231002", "18 characters"),
    ("1101051949123100 X", "17 digits"),
    ("11010519490231002X", "does not exist"),  # 31 February
    ("110105202801010011", "not possible"),  # born in 2028
    ("11010518000101001X", "not possible"),
    ("A1010519491231002X", "17 digits"),
])
def test_invalid_id_numbers(number, reason):
    assert reason in id_number_error(number, today=TODAY)


@pytest.mark.parametrize("code", [
    "91350100M000100Y43",  # the example used in GB 32100 explanations
    "9144030071526726XG",  # a company registered in Shenzhen (public register)
    "91330100799655058B",  # a company registered in Hangzhou (public register)
    "91110000600037341L",
])
def test_valid_credit_codes(code):
    assert credit_code_error(code) is None


@pytest.mark.parametrize("code, reason", [
    ("91350100M000100Y44", "check character"),
    ("91350100M000100Y4", "18 characters"),
    ("91350100M0001I0Y43", "not allowed"),  # I is not in the alphabet
    ("9135010OM000100Y43", "not allowed"),  # O neither
])
def test_invalid_credit_codes(code, reason):
    assert reason in credit_code_error(code)


def test_masks_and_phone_forms():
    assert mask_id_number("330102199001011234") == "330102********1234"
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("+86 138-1234-1234") == "138****1234"
    assert mask_phone("0571-88888888") == "057****8888"
    assert normalise_phone("0086 13812341234") == normalise_phone("13812341234")


def test_fictitious_numbers_are_valid_and_carry_birth_and_sex():
    number = identity.fictitious_id_number("999999", date(1985, 6, 1), 17)
    assert id_number_error(number, today=TODAY) is None
    assert identity.birth_and_sex(number) == (date(1985, 6, 1), "男")


def test_the_docstring_examples_hold():
    result = doctest.testmod(identity)
    assert result.failed == 0 and result.attempted > 0
