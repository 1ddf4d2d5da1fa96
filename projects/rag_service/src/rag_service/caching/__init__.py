"""Answer caches: exact (`response`, SQLite) and semantic (`semantic`, nearest cached question).

An exact cache serves only a question seen before, character for character after
normalisation; a semantic cache also serves paraphrases, at the risk of serving a wrong answer
to a question that is close but different. That risk is why its threshold is chosen by
measurement (`choose_threshold`) and not guessed.
"""

from rag_service.caching.response import CacheStats, ResponseCache, cache_key, normalize_question
from rag_service.caching.semantic import (
    SemanticCache,
    SemanticHit,
    ThresholdChoice,
    choose_threshold,
    semantic_lookup,
)

__all__ = [
    "CacheStats",
    "ResponseCache",
    "SemanticCache",
    "SemanticHit",
    "ThresholdChoice",
    "cache_key",
    "choose_threshold",
    "normalize_question",
    "semantic_lookup",
]
