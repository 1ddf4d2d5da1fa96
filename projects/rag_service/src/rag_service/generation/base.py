"""What every generator offers, and one way to time a stream so backends compare fairly."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Message = dict[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": text}."""


@runtime_checkable
class Generator(Protocol):
    """A chat model that streams its answer in text pieces."""

    name: str
    """For reports: backend and precision, e.g. "llama.cpp Q4_1"."""
    context_tokens: int
    """Prompt plus answer must fit in this many tokens."""

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's own tokenizer (no special tokens added)."""
        ...

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of the whole chat prompt after the model's chat template."""
        ...

    def stream(
        self, messages: Sequence[Message], max_tokens: int = 64, temperature: float = 0.0
    ) -> Iterator[str]:
        """Text pieces as they are generated; closing the iterator stops generation."""
        ...


@dataclass(frozen=True)
class Generation:
    """One answer and how long it took."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    """Time to the first text piece: prompt processing plus the first decoding step."""
    total_s: float

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after the first, per second after the first: the decoding speed alone."""
        decoding = self.total_s - self.ttft_s
        return (
            (self.completion_tokens - 1) / decoding
            if self.completion_tokens > 1 and decoding > 0
            else 0.0
        )


def check_request(messages: Sequence[Message], max_tokens: int, temperature: float) -> None:
    """Refuse malformed requests before any model time is spent (ValueError naming the field)."""
    if not messages:
        raise ValueError("messages must not be empty")
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ValueError(f"messages[{position}] must be {{'role': ..., 'content': ...}}")
        if message["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"messages[{position}].role {message['role']!r} is not a chat role")
        if not isinstance(message["content"], str):
            raise ValueError(f"messages[{position}].content must be a string")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not 0.0 <= temperature <= 2.0:
        raise ValueError(f"temperature must be within [0, 2], got {temperature!r}")


def collect(
    generator: Generator,
    messages: Sequence[Message],
    max_tokens: int = 64,
    temperature: float = 0.0,
) -> Generation:
    """Run one request to the end and time it (the clock starts before the prompt is read)."""
    started = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    for piece in generator.stream(messages, max_tokens, temperature):
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
    total = time.perf_counter() - started
    text = "".join(pieces)
    return Generation(
        text=text,
        prompt_tokens=generator.prompt_tokens(messages),
        completion_tokens=generator.count_tokens(text) if text else 0,
        ttft_s=(first - started) if first is not None else total,
        total_s=total,
    )
