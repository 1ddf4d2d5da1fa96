"""Guardrails: personal data (`pii`), prompt injection (`injection`) and how well both work on
labelled cases (`evaluation`)."""

from rag_service.guardrails.injection import (
    THRESHOLD,
    InjectionVerdict,
    detect_injection,
    leaks_system_prompt,
    wrap_untrusted,
)
from rag_service.guardrails.pii import ALL_KINDS, Finding, Redaction, find_pii, redact

__all__ = [
    "ALL_KINDS",
    "THRESHOLD",
    "Finding",
    "InjectionVerdict",
    "Redaction",
    "detect_injection",
    "find_pii",
    "leaks_system_prompt",
    "redact",
    "wrap_untrusted",
]
