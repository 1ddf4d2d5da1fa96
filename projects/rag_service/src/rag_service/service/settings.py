"""The service's configuration: RAG_* environment variables, checked once at start-up.

Every knob has a default that runs on one laptop: the language model is started by the service
itself as a llama.cpp server child process on a loopback port, and the stores live under
`RAG_DATA_DIR`. Pointing `RAG_LLM_URL` at any OpenAI-compatible server (vLLM, SGLang, llama.cpp's
`llama-server`, TensorRT-LLM's) replaces the child process without a code change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from rag_service.caching.calibration import DEFAULT_SEMANTIC_THRESHOLD
from rag_service.relevance import DEFAULT_IDK_THRESHOLD

RETRIEVALS = ("hybrid", "dense")
GENERATORS = ("q4", "fp32")


class SettingsError(ValueError):
    """A RAG_* variable has a value the service cannot use; the message names the variable."""


@dataclass(frozen=True)
class Variant:
    """One arm of the experiment: how it retrieves and which model precision answers."""

    name: str
    retrieval: str = "hybrid"
    generator: str = "q4"

    def config(self) -> dict[str, str]:
        """What changes this arm's answers: part of every cache key."""
        return {"variant": self.name, "retrieval": self.retrieval, "generator": self.generator}


def parse_variants(text: str) -> tuple[Variant, ...]:
    """`name=retrieval/generator,...`, e.g. `hybrid=hybrid/q4,dense=dense/q4`; first is control."""
    variants = []
    for position, item in enumerate(part.strip() for part in text.split(",")):
        name, sep, spec = item.partition("=")
        retrieval, _, generator = spec.partition("/")
        if not sep or not name or retrieval not in RETRIEVALS or generator not in GENERATORS:
            raise SettingsError(
                f"RAG_VARIANTS item {position} is {item!r}: expected name=retrieval/generator "
                f"with retrieval in {RETRIEVALS} and generator in {GENERATORS}"
            )
        variants.append(Variant(name, retrieval, generator))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise SettingsError(f"RAG_VARIANTS names must be unique, got {names}")
    return tuple(variants)


@dataclass(frozen=True)
class Settings:
    """Values of the RAG_* variables (name = RAG_ + field name in capitals)."""

    host: str = "127.0.0.1"
    port: int = 8300
    data_dir: Path = Path("rag-data")
    """Request log, experiment log, response cache, embedding cache, the LLM server's log."""
    llm_url: str = ""
    """An OpenAI-compatible server to use; empty: start llama.cpp's server as a child process."""
    llm_threads: int = 0
    """Threads of the child llama.cpp server; 0: every core this process may use."""
    llm_context_tokens: int = 2048
    llm_start_timeout_s: float = 60.0
    llm_read_timeout_s: float = 120.0
    experiment: str = "retrieval-v1"
    variants: tuple[Variant, ...] = field(
        default_factory=lambda: parse_variants("hybrid=hybrid/q4,dense=dense/q4")
    )
    top_k: int = 4
    budget_tokens: int = 768
    """Tokens of sources in a prompt: SmolLM2 has 2,048 in all, and prefill dominates latency."""
    max_tokens: int = 64
    """Default answer length; a request may ask for up to `max_tokens_limit`."""
    max_tokens_limit: int = 256
    max_question_chars: int = 2000
    idk_threshold: float = DEFAULT_IDK_THRESHOLD
    """Below this best dense cosine the service answers "I don't know" without generating
    (chosen on the dev split: at most 5 % of answerable questions refused; `relevance.py`)."""
    semantic_threshold: float = DEFAULT_SEMANTIC_THRESHOLD
    """Cosine at or above which a cached answer to another question is served: above every
    look-alike pair measured, so a near-duplicate cache (`caching/calibration.py`)."""
    semantic_cache_entries: int = 2000
    cache_ttl_s: float = 86400.0
    gpu_tokens_per_s: float = 0.0
    """Measured GPU decoding rate for the dashboard's break-even (0: the stated assumption)."""
    embed_batch: int = 16
    embed_wait_ms: float = 2.0
    """How long a query embedding waits for batch mates under load."""

    def __post_init__(self) -> None:
        # overrides given in code (tests, notebooks) may pass a folder as a string
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())

    @property
    def control(self) -> Variant:
        return self.variants[0]


def _convert(name: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw).expanduser()
        if isinstance(default, tuple):
            return parse_variants(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from exc
    return raw


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from RAG_* variables (then `overrides`), each checked; SettingsError if not."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    defaults = Settings()
    for item in fields(Settings):
        name = f"RAG_{item.name.upper()}"
        if name in environ:
            values[item.name] = _convert(name, environ[name], getattr(defaults, item.name))
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    check(settings)
    return settings


def check(settings: Settings) -> None:
    """Refuse values that cannot work, naming the variable."""
    positive = (
        "port", "llm_context_tokens", "top_k", "budget_tokens", "max_tokens", "max_tokens_limit",
        "max_question_chars", "semantic_cache_entries", "embed_batch",
    )  # fmt: skip
    for name in positive:
        if getattr(settings, name) < 1:
            raise SettingsError(f"RAG_{name.upper()} must be >= 1, got {getattr(settings, name)}")
    for name in ("llm_start_timeout_s", "llm_read_timeout_s", "cache_ttl_s"):
        if not getattr(settings, name) > 0:
            raise SettingsError(f"RAG_{name.upper()} must be > 0, got {getattr(settings, name)}")
    if settings.llm_threads < 0 or settings.embed_wait_ms < 0:
        raise SettingsError("RAG_LLM_THREADS and RAG_EMBED_WAIT_MS must be >= 0")
    if settings.max_tokens > settings.max_tokens_limit:
        raise SettingsError(
            f"RAG_MAX_TOKENS ({settings.max_tokens}) exceeds RAG_MAX_TOKENS_LIMIT "
            f"({settings.max_tokens_limit})"
        )
    if settings.budget_tokens + settings.max_tokens_limit + 256 > settings.llm_context_tokens:
        raise SettingsError(
            f"RAG_BUDGET_TOKENS ({settings.budget_tokens}) + RAG_MAX_TOKENS_LIMIT "
            f"({settings.max_tokens_limit}) + 256 for the rules and question must fit "
            f"RAG_LLM_CONTEXT_TOKENS ({settings.llm_context_tokens})"
        )
    for name in ("idk_threshold", "semantic_threshold"):
        if not -1.0 <= getattr(settings, name) <= 1.01:
            raise SettingsError(f"RAG_{name.upper()} must be a cosine in [-1, 1]")
    if not settings.variants:
        raise SettingsError("RAG_VARIANTS must name at least one variant")
    if settings.llm_url and not settings.llm_url.startswith(("http://", "https://")):
        raise SettingsError(f"RAG_LLM_URL must be an http(s) URL, got {settings.llm_url!r}")
