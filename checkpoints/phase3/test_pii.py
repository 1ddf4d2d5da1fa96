"""Checkpoint 3.8: a payment-card recogniser with Luhn validation.

Grades two functions of `rag_service.guardrails.pii`:
- `luhn_valid(digits) -> bool`: from the rightmost digit, double every second digit, subtract
  9 from any result over 9, sum everything; valid when the sum is divisible by 10. Fewer than
  2 digits is False; anything but 0-9 raises ValueError.
- `find_payment_cards(text) -> list[Finding]`: runs of 13 to 19 digits in which single spaces
  or dashes may separate digits, not glued to letters or other digits, kept when Luhn-valid;
  each a Finding(kind="PAYMENT_CARD", start, end, text as written, score), in text order.
Every expected checksum below is worked out by hand in the test's docstring or comment.
"""

from __future__ import annotations

import pytest

from learn.testing import import_learner


@pytest.fixture
def pii():
    return import_learner("rag_service.guardrails.pii")


def cards(pii, text):
    return [(f.kind, f.start, f.end, f.text) for f in pii.find_payment_cards(text)]


@pytest.mark.checkpoint("3.8")
def test_luhn_textbook_number(pii):
    """79927398713 from the right: 3 + 1*2 + 7 + (8*2-9) + 9 + 3*2 + 7 + 2*2 + 9 + (9*2-9) + 7
    = 70."""
    assert pii.luhn_valid("79927398713") is True
    assert pii.luhn_valid("79927398710") is False  # sum 67
    assert pii.luhn_valid("79927398731") is False  # last two swapped: sum 72


@pytest.mark.checkpoint("3.8")
def test_luhn_doubles_from_the_right_and_subtracts_nine(pii):
    """125: 5 + 2*2 + 1 = 10 (doubling from the left would give 2 + 2 + 1 = 5); 59: 5*2-9 + 9
    = 10 (without subtracting 9: 19); 19: 1*2 + 9 = 11."""
    assert pii.luhn_valid("125") is True
    assert pii.luhn_valid("59") is True
    assert pii.luhn_valid("91") is True  # 9*2-9 + 1 = 10
    assert pii.luhn_valid("19") is False
    assert pii.luhn_valid("4111111111111111") is True  # 4*2 + 7 doubled ones + 8 ones = 30


@pytest.mark.checkpoint("3.8")
def test_luhn_short_inputs_and_non_digits(pii):
    """'' and '0' have no payload: False; '00' sums to 0: True; a space is not a digit."""
    assert pii.luhn_valid("") is False
    assert pii.luhn_valid("0") is False
    assert pii.luhn_valid("00") is True
    with pytest.raises(ValueError):
        pii.luhn_valid("4111 1111 1111 1111")


@pytest.mark.checkpoint("3.8")
def test_cards_with_spaces_dashes_or_none(pii):
    """Each format found with its exact offsets and text as written, in order."""
    text = "a 4111 1111 1111 1111, b 5555-5555-5555-4444 and c 378282246310005."
    assert cards(pii, text) == [
        ("PAYMENT_CARD", 2, 21, "4111 1111 1111 1111"),
        ("PAYMENT_CARD", 25, 44, "5555-5555-5555-4444"),
        ("PAYMENT_CARD", 51, 66, "378282246310005"),
    ]


@pytest.mark.checkpoint("3.8")
def test_luhn_invalid_numbers_are_dropped(pii):
    """4111 1111 1111 1112 sums to 31 and 1234567890123456 to 64: no findings."""
    assert cards(pii, "order 4111 1111 1111 1112 and 1234567890123456") == []
    assert cards(pii, "ok 4111111111111111") == [("PAYMENT_CARD", 3, 19, "4111111111111111")]


@pytest.mark.checkpoint("3.8")
def test_length_between_13_and_19_digits(pii):
    """411111111117 (12 digits, sum 30) and 41111111111111111115 (20 digits, sum 40) are
    Luhn-valid but the wrong length; 4222222222222 (13) and 4111111111111111110 (19) count."""
    assert cards(pii, "x 411111111117 y 41111111111111111115 z") == []
    found = cards(pii, "4222222222222 and 4111111111111111110")
    assert found == [
        ("PAYMENT_CARD", 0, 13, "4222222222222"),
        ("PAYMENT_CARD", 18, 37, "4111111111111111110"),
    ]


@pytest.mark.checkpoint("3.8")
def test_runs_glued_to_letters_or_with_double_separators_are_not_cards(pii):
    """'ID4111111111111111' is part of a word; two spaces split a run into 4 + 12 digits."""
    assert cards(pii, "ID4111111111111111 and 4111111111111111x") == []
    assert cards(pii, "4111  1111 1111 1111") == []
    found = pii.find_payment_cards("card: 4012-8888-8888-1881")
    assert len(found) == 1 and 0 < found[0].score <= 1
    assert (found[0].start, found[0].end) == (6, 25)
