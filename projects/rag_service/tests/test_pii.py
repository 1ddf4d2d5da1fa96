"""PII recognisers: each kind found in its usual formats, near-misses left alone, overlaps
resolved, redaction offsets stable, bad input refused."""

from __future__ import annotations

import pytest

from rag_service.guardrails.pii import (
    ALL_KINDS,
    Finding,
    find_payment_cards,
    find_pii,
    iban_valid,
    luhn_valid,
    redact,
)


def spans(text: str, kinds=ALL_KINDS) -> list[tuple[str, str]]:
    return [(f.kind, f.text) for f in find_pii(text, kinds)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to maria.garcia@example.com.", [("EMAIL", "maria.garcia@example.com")]),
        ("j.doe+py@mail.example.org;", [("EMAIL", "j.doe+py@mail.example.org")]),
        ("+44 20 7946 0958", [("PHONE", "+44 20 7946 0958")]),
        ("call (212) 555-0147 now", [("PHONE", "(212) 555-0147")]),
        ("or 212.555.0147", [("PHONE", "212.555.0147")]),
        ("+1 (646) 555-0199", [("PHONE", "+1 (646) 555-0199")]),
        ("London 020 7946 0321", [("PHONE", "020 7946 0321")]),
        ("mobile 07700 900456", [("PHONE", "07700 900456")]),
        ("tel 06.12.34.56.78", [("PHONE", "06.12.34.56.78")]),
        ("móvil 612 345 678", [("PHONE", "612 345 678")]),
        ("DE89 3704 0044 0532 0130 00", [("IBAN", "DE89 3704 0044 0532 0130 00")]),
        ("to GB29NWBK60161331926819.", [("IBAN", "GB29NWBK60161331926819")]),
        ("ssn 078-05-1120", [("US_SSN", "078-05-1120")]),
        ("NI AB 12 34 56 C", [("UK_NINO", "AB 12 34 56 C")]),
        ("nino=JG103759A", [("UK_NINO", "JG103759A")]),
        ("DNI 12345678Z", [("ES_DNI", "12345678Z")]),
        ("NIF 48291037-F", [("ES_DNI", "48291037-F")]),
        ("from 203.0.113.77:443", [("IP_ADDRESS", "203.0.113.77")]),
        ("Amex 378282246310005", [("PAYMENT_CARD", "378282246310005")]),
    ],
)
def test_each_kind_in_its_usual_formats(text, expected):
    assert spans(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.11.2 and numpy 1.26.4",
        "released on 2024-03-15 at 2023-12-31T23:59:59",
        "x = 1234567 * 89012345",
        "order 4111 1111 1111 1112",  # Luhn-invalid
        "IBAN DE89 3704 0044 0532 0130 0",  # one digit short for Germany
        "GB00 WEST 1234 5698 7654 32",  # check digits 00 fail mod 97
        "SSN 000-12-3456, 666-45-6789, 900-12-3456, 123-00-4567, 123-45-0000",
        "QQ 12 34 56 C and GB123456A and AB123456Z",  # unused prefixes, bad suffix
        "DNI 12345678A",  # the letter for 12345678 is Z
        "bad 256.12.1.1 and 01.2.3.4; local 127.0.0.1 and 0.0.0.0",
        "@lru_cache(maxsize=128) and pip install git+https://host/org/repo@v1.2.0",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "f(555, 123, 4567) and items 801-1600",
    ],
)
def test_near_misses_are_not_reported(text):
    assert find_pii(text) == []


def test_offsets_point_at_the_text_and_findings_are_sorted():
    text = "a@example.com then 4111-1111-1111-1111 then 10.0.0.5"
    findings = find_pii(text)
    assert [f.kind for f in findings] == ["EMAIL", "PAYMENT_CARD", "IP_ADDRESS"]
    assert all(text[f.start : f.end] == f.text for f in findings)
    assert [f.start for f in findings] == sorted(f.start for f in findings)


def test_an_iban_wins_over_the_card_number_inside_it():
    """DE62 3704 0044 0532 0130 01 is a valid IBAN whose 18-digit BBAN also passes Luhn: the
    card recogniser alone reports the BBAN, find_pii keeps only the longer IBAN."""
    text = "pay DE62 3704 0044 0532 0130 01 now"
    assert [f.text for f in find_payment_cards(text)] == ["3704 0044 0532 0130 01"]
    assert spans(text) == [("IBAN", "DE62 3704 0044 0532 0130 01")]


def test_overlap_keeps_the_longer_finding():
    """The Spanish national number inside an international one is dropped."""
    assert spans("tel +34 699 123 456") == [("PHONE", "+34 699 123 456")]
    assert len(find_pii("tel 699 123 456")) == 1


def test_kinds_restricts_the_search_and_unknown_kinds_are_refused():
    text = "a@example.com 078-05-1120"
    assert spans(text, ["US_SSN"]) == [("US_SSN", "078-05-1120")]
    with pytest.raises(ValueError, match="kinds"):
        find_pii(text, ["EMAIL", "NAME"])
    with pytest.raises(TypeError):
        find_pii(text, "EMAIL")
    with pytest.raises(TypeError):
        find_pii(b"bytes")  # type: ignore[arg-type]


def test_names_are_not_detected():
    """No NER model offline: a name alone is not personal data to these recognisers."""
    assert find_pii("Ana Ruiz and John Smith met Dr. Müller") == []


def test_luhn_on_known_numbers():
    assert luhn_valid("79927398713")  # the textbook example
    assert not luhn_valid("79927398710")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert luhn_valid("00") and not luhn_valid("0") and not luhn_valid("")
    with pytest.raises(ValueError, match="digits"):
        luhn_valid("4111 1111")
    with pytest.raises(ValueError, match="digits"):
        luhn_valid("٤١")  # Arabic-Indic digits are not 0-9


def test_card_scores_reflect_the_issuer_prefix():
    """A known network prefix scores higher than a Luhn-valid number from none."""
    visa, unknown = find_payment_cards("4111111111111111 and 1000000000000008")
    assert visa.score > unknown.score
    assert unknown.text == "1000000000000008"


def test_iban_validation():
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("FR1420041010050500013M02606")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")
    assert not iban_valid("XX82WEST12345698765432")  # unknown country
    assert not iban_valid("gb82west12345698765432")  # lower case is not recognised


def test_redact_replaces_each_finding_and_keeps_original_offsets():
    text = "mail a@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111."
    result = redact(text)
    assert result.text == "mail <EMAIL> or call <PHONE>; card <PAYMENT_CARD>."
    assert result.counts == {"EMAIL": 1, "PHONE": 1, "PAYMENT_CARD": 1}
    assert [text[f.start : f.end] for f in result.findings] == [f.text for f in result.findings]
    assert redact("nothing here").text == "nothing here"


def test_redact_with_given_findings_checks_them():
    text = "id 078-05-1120"
    finding = find_pii(text)[0]
    assert redact(text, [finding]).text == "id <US_SSN>"
    assert redact(text, []).text == text
    with pytest.raises(ValueError, match="does not match"):
        redact(text, [Finding("US_SSN", 0, 11, "078-05-1120", 1.0)])
    with pytest.raises(ValueError, match="outside"):
        redact(text, [Finding("US_SSN", 3, 99, "x", 1.0)])
    with pytest.raises(ValueError, match="overlap"):
        redact("abcdef", [Finding("EMAIL", 0, 3, "abc", 1.0), Finding("EMAIL", 2, 4, "cd", 1.0)])


def test_an_international_number_inside_brackets_is_found_whole():
    """The sentence's closing bracket must not cost the number its country code."""
    text = "(x, +34 612 345 678)."
    assert redact(text).text == "(x, <PHONE>)."
