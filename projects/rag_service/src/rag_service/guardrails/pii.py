"""Personal data in text: find it, then redact it, with recognisers written here.

Why not Microsoft Presidio: its analyzer needs a spaCy language model (`en_core_web_lg` and
friends), which is not published on PyPI and cannot be downloaded on the machines this package
runs on. The recognisers below are what Presidio's pattern recognisers do for these kinds, plus
the checksums that make them precise: a regular expression proposes a candidate, a validator
(Luhn, ISO 13616 mod-97, the DNI letter, the SSN and NINO allocation rules, octet ranges) keeps
it or drops it. A validator is what separates a card number from an order number.

Kinds: EMAIL, PHONE, PAYMENT_CARD, IBAN, US_SSN, UK_NINO, ES_DNI, IP_ADDRESS. Personal NAMES
are NOT detected: that needs a named-entity model, and none is available offline. A caller that
must remove names has to add one; this module does not pretend to.

Every finding carries a score: about 0.95 where a checksum confirmed it, lower where only the
shape did (a phone number has no checksum). Overlapping findings keep the longer one, then the
higher-scored one, so an IBAN is not also reported as the card-like digit run inside it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ALL_KINDS",
    "IBAN_LENGTHS",
    "Finding",
    "Redaction",
    "find_payment_cards",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "redact",
]

ALL_KINDS: tuple[str, ...] = (
    "EMAIL",
    "PHONE",
    "PAYMENT_CARD",
    "IBAN",
    "US_SSN",
    "UK_NINO",
    "ES_DNI",
    "IP_ADDRESS",
)

IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "TR": 26,
}  # fmt: skip
"""IBAN length per country (ISO 13616 registry) for the countries checked; others are not
recognised, because without the length a stray run of capitals and digits would be accepted."""


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: `text == source[start:end]`; `score` in (0, 1]."""

    kind: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Redaction:
    """The redacted text, the findings it replaced (offsets into the ORIGINAL text) and how
    many of each kind."""

    text: str
    findings: list[Finding]
    counts: dict[str, int]


def _require_text(text: object, name: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


# --- payment cards (checkpoint 3.8) ---------------------------------------------------------

_DIGITS = re.compile(r"[0-9]*")
# A run of digits joined by single spaces or dashes, not glued to letters or other digits.
_CARD_CANDIDATE = re.compile(r"(?<![\w-])\d(?:[ -]?\d)*(?![\w])")
# Issuer prefixes (IIN) of the big networks: Visa, Mastercard, Amex, Discover, JCB, Diners,
# UnionPay, Maestro. A Luhn-valid number outside them is still reported, with a lower score.
_KNOWN_IIN = re.compile(
    r"4|5[0-8]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[4678]|30[0-5]"
    r"|35(?:2[89]|[3-8]\d)|6011|64[4-9]|65|62|6304|67"
)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits.

    From the rightmost digit, double every second digit, subtract 9 from any result over 9,
    sum everything: the number is valid when the sum is divisible by 10. Every payment card
    number carries this check digit, so it turns "16 digits" (one in ten passes by chance)
    into "a number someone issued". Fewer than 2 digits is False (there is no payload to
    check). Raises ValueError for anything but the digits 0-9.
    """
    _require_text(digits, "digits")
    if not _DIGITS.fullmatch(digits):
        raise ValueError(f"digits must contain only the digits 0-9, got {digits!r}")
    # BEGIN SOLUTION 3.8: Luhn checksum
    if len(digits) < 2:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0
    # END SOLUTION


def _card_score(digits: str) -> float:
    """0.95 for a known issuer prefix, 0.75 for a Luhn-valid number from no known network."""
    return 0.95 if _KNOWN_IIN.match(digits) else 0.75


def find_payment_cards(text: str) -> list[Finding]:
    """Payment card numbers in `text`, in order of position.

    A candidate is a run of 13 to 19 digits in which single spaces or dashes may separate the
    digits ("4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"), not glued to
    letters or other digits; it is kept when its digits pass `luhn_valid`. The finding's text
    is the run as written (separators included), its score from `_card_score`.
    """
    _require_text(text)
    # BEGIN SOLUTION 3.8: candidates of 13-19 digits, Luhn-valid ones kept
    findings = []
    for match in _CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            findings.append(
                Finding(
                    "PAYMENT_CARD", match.start(), match.end(), match.group(), _card_score(digits)
                )
            )
    return findings
    # END SOLUTION


# --- the other recognisers --------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)

# International: +country code, then groups separated by single spaces, dashes or dots, an
# area code possibly in parentheses. 7 to 15 digits in all (E.164 allows at most 15).
_PHONE_INTL = re.compile(r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w])")
# North American: (212) 555-0147, 212-555-0147, 212.555.0147; area and exchange start 2-9.
_PHONE_NANP = re.compile(
    r"(?<![\w.+-])(?:\([2-9]\d\d\) ?|[2-9]\d\d([-. ]))[2-9]\d\d(?(1)\1|[-. ])\d{4}(?![\w]|[.-]\d)"
)
# National with a trunk 0 (UK, Germany, France, ...): 020 7946 0958, 030-901820-12,
# 07700 900123; groups of 2-6 digits after the first; 9 to 11 digits in all. Not 00 (the
# international call prefix, and the start of many zero-padded ids).
_PHONE_TRUNK = re.compile(r"(?<![\w.+-])0[1-9]\d{0,3}(?:[ -]\d{2,6}){1,4}(?![\w]|[.-]\d)")
# French dotted, and a UK mobile written without spaces.
_PHONE_FR_DOTS = re.compile(r"(?<![\w.])0[1-9](?:\.\d\d){4}(?![\w]|\.\d)")
_PHONE_UK_MOBILE = re.compile(r"(?<![\w.+-])07\d{9}(?![\w])")
# Spanish national numbers: nine digits starting 6, 7, 8 or 9, written 3-3-3 with spaces.
_PHONE_ES = re.compile(r"(?<![\w.+-])[6-9]\d\d \d{3} \d{3}(?![\w]|[ .-]\d)")

_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})(\d{2})")
_SSN = re.compile(r"(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w]|-\d)")
_NINO = re.compile(
    r"(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d\d) ?(\d\d) ?(\d\d) ?([A-D])"
    r"(?![A-Za-z0-9])"
)
_NINO_UNUSED_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_DNI = re.compile(r"(?<![A-Za-z0-9])(\d{8})[ -]?([A-Za-z])(?![A-Za-z0-9])")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_NOT_PERSONAL_IPS = frozenset({"0.0.0.0", "255.255.255.255"})
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")


def _find_emails(text: str) -> Iterable[Finding]:
    for m in _EMAIL.finditer(text):
        yield Finding("EMAIL", m.start(), m.end(), m.group(), 0.9)


def _digit_count(candidate: str) -> int:
    return sum(char.isdigit() for char in candidate)


def _find_phones(text: str) -> Iterable[Finding]:
    """Shape-only (no checksum exists): scores 0.6-0.8, lowest for the loosest shapes."""
    for m in _PHONE_INTL.finditer(text):
        candidate = m.group()
        # "(call +34 612 345 678)": the closing bracket of the sentence is not the number's
        while candidate.endswith(")") and candidate.count(")") > candidate.count("("):
            candidate = candidate[:-1]
        if 7 <= _digit_count(candidate) <= 15 and candidate.count("(") == candidate.count(")"):
            yield Finding("PHONE", m.start(), m.start() + len(candidate), candidate, 0.8)
    for m in _PHONE_NANP.finditer(text):
        yield Finding("PHONE", m.start(), m.end(), m.group(), 0.7)
    for m in _PHONE_TRUNK.finditer(text):
        if 9 <= _digit_count(m.group()) <= 11:
            yield Finding("PHONE", m.start(), m.end(), m.group(), 0.65)
    for pattern in (_PHONE_FR_DOTS, _PHONE_UK_MOBILE):
        for m in pattern.finditer(text):
            yield Finding("PHONE", m.start(), m.end(), m.group(), 0.7)
    for m in _PHONE_ES.finditer(text):
        yield Finding("PHONE", m.start(), m.end(), m.group(), 0.6)


def iban_valid(iban: str) -> bool:
    """ISO 13616: known country, its length, and (first four moved to the end, letters as
    10-35) the number mod 97 equals 1. Spaces are ignored; letters must be upper case."""
    compact = _require_text(iban, "iban").replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact):
        return False
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _find_ibans(text: str) -> Iterable[Finding]:
    """From each country code + check digits, take exactly the country's length in letters and
    digits (single spaces allowed between them); the IBAN must end there."""
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1))
        if length is None:
            continue
        position, taken = m.end(), 4
        while taken < length and position < len(text):
            char = text[position]
            if char == " " and position + 1 < len(text) and text[position + 1].isalnum():
                position += 1
                continue
            if not (char.isascii() and (char.isdigit() or char.isupper())):
                break
            taken += 1
            position += 1
        if taken != length or (position < len(text) and text[position].isalnum()):
            continue
        candidate = text[m.start() : position]
        if iban_valid(candidate):
            yield Finding("IBAN", m.start(), position, candidate, 0.95)


def _find_ssns(text: str) -> Iterable[Finding]:
    """AAA-GG-SSSS (or with spaces): area not 000, 666 or 9xx, group not 00, serial not 0000.
    Nine digits with no separators are NOT matched: too many ordinary numbers look like that."""
    for m in _SSN.finditer(text):
        area, group, serial = m.group(1), m.group(3), m.group(4)
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue
        yield Finding("US_SSN", m.start(), m.end(), m.group(), 0.85 if m.group(2) == "-" else 0.7)


def _find_ninos(text: str) -> Iterable[Finding]:
    """Two prefix letters (first not D F I Q U V; second not D F I O Q U V; not BG GB KN NK NT
    TN ZZ), six digits, suffix A-D; spaces between the pairs optional."""
    for m in _NINO.finditer(text):
        if m.group(1) not in _NINO_UNUSED_PREFIXES:
            yield Finding("UK_NINO", m.start(), m.end(), m.group(), 0.85)


def _find_dnis(text: str) -> Iterable[Finding]:
    """Eight digits and the control letter TRWAGMYFPDXBNJZSQVHLCKE[number mod 23]."""
    for m in _DNI.finditer(text):
        if _DNI_LETTERS[int(m.group(1)) % 23] == m.group(2).upper():
            yield Finding("ES_DNI", m.start(), m.end(), m.group(), 0.95)


def _find_ipv4(text: str) -> Iterable[Finding]:
    """Dotted quads with octets 0-255 and no leading zeros (01.02.03.04 is not written by
    anyone meaning an address). Loopback (127.x.x.x), 0.0.0.0 and 255.255.255.255 name no
    machine of anyone's and are skipped. A four-part version number with small parts is
    indistinguishable from an address and IS reported."""
    for m in _IPV4.finditer(text):
        octets = m.groups()
        if m.group() in _NOT_PERSONAL_IPS or octets[0] == "127":
            continue
        if all(int(o) <= 255 and (o == "0" or not o.startswith("0")) for o in octets):
            yield Finding("IP_ADDRESS", m.start(), m.end(), m.group(), 0.7)


_RECOGNISERS = {
    "EMAIL": _find_emails,
    "PHONE": _find_phones,
    "PAYMENT_CARD": find_payment_cards,
    "IBAN": _find_ibans,
    "US_SSN": _find_ssns,
    "UK_NINO": _find_ninos,
    "ES_DNI": _find_dnis,
    "IP_ADDRESS": _find_ipv4,
}


def _resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Greedy: longest first, then highest score, then earliest; a finding overlapping one
    already kept is dropped. Returned in order of position."""
    ranked = sorted(findings, key=lambda f: (-(f.end - f.start), -f.score, f.start, f.kind))
    kept: list[Finding] = []
    for finding in ranked:
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: (f.start, f.end))


def find_pii(text: str, kinds: Sequence[str] = ALL_KINDS) -> list[Finding]:
    """Every finding of the requested kinds, sorted by start, overlaps resolved.

    Raises TypeError if `text` is not a str and ValueError naming any unknown kind.
    """
    _require_text(text)
    if isinstance(kinds, str):
        raise TypeError("kinds must be a sequence of kind names, not one string")
    unknown = [kind for kind in kinds if kind not in _RECOGNISERS]
    if unknown:
        raise ValueError(f"kinds: unknown {unknown}; known kinds are {list(ALL_KINDS)}")
    candidates = [f for kind in dict.fromkeys(kinds) for f in _RECOGNISERS[kind](text)]
    return _resolve_overlaps(candidates)


def redact(text: str, findings: Sequence[Finding] | None = None) -> Redaction:
    """Replace each finding with `<KIND>` (e.g. `<EMAIL>`).

    `findings` defaults to `find_pii(text)`. Given findings must lie inside `text`, match it
    (`text[start:end] == finding.text`) and not overlap, else ValueError: redacting from stale
    offsets would cut the wrong characters. The returned findings keep their offsets into the
    original text, so a caller can still point at what was removed.
    """
    _require_text(text)
    if findings is None:
        findings = find_pii(text)
    ordered = sorted(findings, key=lambda f: (f.start, f.end))
    for previous, finding in zip([None, *ordered], ordered, strict=False):
        if not (0 <= finding.start < finding.end <= len(text)):
            raise ValueError(f"findings: {finding} lies outside the text ({len(text)} chars)")
        if text[finding.start : finding.end] != finding.text:
            raise ValueError(f"findings: {finding} does not match the text at its offsets")
        if previous is not None and finding.start < previous.end:
            raise ValueError(f"findings: {previous} and {finding} overlap")
    pieces, cursor = [], 0
    for finding in ordered:
        pieces.append(text[cursor : finding.start])
        pieces.append(f"<{finding.kind}>")
        cursor = finding.end
    pieces.append(text[cursor:])
    counts = dict(Counter(finding.kind for finding in ordered))
    return Redaction(text="".join(pieces), findings=list(ordered), counts=counts)
