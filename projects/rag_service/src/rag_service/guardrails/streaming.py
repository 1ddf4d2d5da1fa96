"""PII redaction on a token stream: hold back a short tail so nothing personal leaks half-shown.

Redacting the finished answer is easy; a streamed answer has already shown its first tokens
when the rest arrives, and a card number split across tokens would be on the screen before the
recogniser could see it whole. `StreamRedactor` therefore releases text only up to
`holdback` characters behind what has arrived (longer than any recognised item: an IBAN with
spaces is at most 42), moves the cut back to the start of any finding that straddles it, and
redacts each released segment. `finish` releases the rest. The client sees the answer about
`holdback` characters late (~15 tokens), and never a partial card number.
"""

from __future__ import annotations

from collections import Counter

from rag_service.guardrails.pii import find_pii, redact

DEFAULT_HOLDBACK = 64


class StreamRedactor:
    """feed(piece) -> redacted text safe to show now; finish() -> the redacted remainder."""

    def __init__(self, holdback: int = DEFAULT_HOLDBACK) -> None:
        if isinstance(holdback, bool) or not isinstance(holdback, int) or holdback < 1:
            raise ValueError(f"holdback must be a positive int, got {holdback!r}")
        self.holdback = holdback
        self.text = ""
        """Everything received so far, unredacted (never shown)."""
        self.released = 0
        """Characters of `text` already released (redacted) to the client."""
        self.counts: Counter[str] = Counter()
        self.shown: list[str] = []

    def _release(self, cut: int) -> str:
        findings = find_pii(self.text)
        for finding in findings:  # never cut through a finding: release up to its start
            if finding.start < cut < finding.end:
                cut = finding.start
        if cut <= self.released:
            return ""
        segment_findings = [f for f in findings if self.released <= f.start and f.end <= cut]
        segment = self.text[self.released : cut]
        shifted = [
            type(f)(f.kind, f.start - self.released, f.end - self.released, f.text, f.score)
            for f in segment_findings
        ]
        redaction = redact(segment, shifted)
        self.counts.update(redaction.counts)
        self.released = cut
        self.shown.append(redaction.text)
        return redaction.text

    def feed(self, piece: str) -> str:
        self.text += piece
        cut = len(self.text) - self.holdback
        if cut <= self.released:
            return ""
        # cut at a whitespace so a word (or a number's digit group) is not split
        space = self.text.rfind(" ", self.released, cut)
        if space <= self.released:
            return ""
        return self._release(space)

    def finish(self) -> str:
        return self._release(len(self.text))

    @property
    def redacted_text(self) -> str:
        """What the client has been shown so far (all of it, after `finish`)."""
        return "".join(self.shown)
