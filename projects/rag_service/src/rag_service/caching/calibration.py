"""Measure the semantic cache's threshold on labelled question pairs, end to end.

`choose_threshold` picks the lowest cosine whose wrong-hit rate stays within a budget; this
module feeds it real pairs (`datasets/question_pairs.py`: paraphrases and retyped variants
one cached answer serves, and look-alikes that need another answer) embedded by a real
encoder, chooses on the dev pairs and reports the test pairs at the chosen threshold. The
threshold belongs to the encoder it was measured with: another model, or another precision of
the same one, moves the cosines and needs its own measurement.

Rates on test, as `choose_threshold` defines them:
- hit_rate: pairs served from the cache / all pairs;
- wrong_hit_rate: look-alikes served / pairs served (the share of cache answers that are wrong);
- servable_hit_rate: pairs with `same` true (paraphrases and variants) served / all such
  pairs (how much of the traffic the cache could take, it takes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rag_service.caching.semantic import ThresholdChoice, choose_threshold

DEFAULT_SEMANTIC_THRESHOLD = 0.92
"""The cosine the service's semantic cache should use with MiniLM fp32 (measured 2026-12-06).

Chosen on dev alone (1 % wrong-hit budget) the threshold is 0.896, and on test it served 2 of
37 look-alikes (0.910 and 0.908; wrong-hit rate 2/15 = 13 %). 0.92 is `choose_threshold` on
all 190 pairs with the same budget: above every look-alike seen; it serves retyped variants
of a cached question (23 of the 40) and no reworded paraphrase (the highest scored 0.858).
No held-out pairs are left to grade it: treat it as a near-duplicate detector, not a
paraphrase matcher.
"""

__all__ = [
    "DEFAULT_SEMANTIC_THRESHOLD",
    "CacheCalibration",
    "PairEvaluation",
    "calibrate_semantic_cache",
    "evaluate_pairs",
    "pair_similarities",
]


def pair_similarities(encoder: Any, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
    """Cosine between the embeddings of first[i] and second[i], float64, one per pair.

    Both sides are embedded as queries (`encode_queries`: they are questions) in one batch, so
    a repeated question is embedded once per occurrence but with the same batching as a
    service would give it; vectors are re-normalised here rather than trusted to be unit.
    """
    first, second = list(first), list(second)
    if len(first) != len(second):
        raise ValueError(f"first and second differ in length: {len(first)} != {len(second)}")
    if not first:
        raise ValueError("no pairs to compare")
    vectors = np.asarray(encoder.encode_queries(first + second).vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise ValueError("the encoder returned a zero vector: its cosine is undefined")
    unit = vectors / norms
    return np.einsum("ij,ij->i", unit[: len(first)], unit[len(first) :])


@dataclass(frozen=True)
class PairEvaluation:
    """What a threshold does on labelled pairs: counts, and rates as the module defines them.

    servable: pairs whose cached answer is right (`same` true); right_hits: those served.
    """

    threshold: float
    pairs: int
    servable: int
    hits: int
    wrong_hits: int
    right_hits: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.pairs

    @property
    def wrong_hit_rate(self) -> float:
        """Wrong hits / hits; 0 when nothing is served (no answer served, none wrong)."""
        return self.wrong_hits / self.hits if self.hits else 0.0

    @property
    def servable_hit_rate(self) -> float:
        return self.right_hits / self.servable if self.servable else 0.0


def evaluate_pairs(
    threshold: float, similarities: Sequence[float] | np.ndarray, same: Sequence[bool]
) -> PairEvaluation:
    """Serve every pair whose similarity is >= `threshold` (the cache's rule) and count."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    if math.isnan(threshold):
        raise ValueError("threshold must not be NaN")
    sims = np.asarray(similarities, dtype=np.float64)
    if sims.ndim != 1 or sims.size == 0 or not np.isfinite(sims).all():
        raise ValueError("similarities must be a non-empty 1-d sequence of finite numbers")
    if len(same) != sims.size or not all(isinstance(s, bool | np.bool_) for s in same):
        raise ValueError("same must hold one bool per similarity")
    right = np.asarray(same, dtype=bool)
    served = sims >= threshold
    return PairEvaluation(
        threshold=float(threshold),
        pairs=int(sims.size),
        servable=int(right.sum()),
        hits=int(served.sum()),
        wrong_hits=int((served & ~right).sum()),
        right_hits=int((served & right).sum()),
    )


@dataclass(frozen=True)
class CacheCalibration:
    """The threshold chosen on dev pairs and its evaluation on test pairs."""

    max_wrong_hit_rate: float
    dev: ThresholdChoice
    test: PairEvaluation
    test_hit_rate_by_kind: dict[str, float]
    similarity_quantiles: dict[str, dict[str, float]]

    @property
    def threshold(self) -> float:
        return self.dev.threshold

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, rates included (properties are not dataclass fields)."""
        out = asdict(self)
        out["threshold"] = self.threshold
        out["test"].update(
            hit_rate=self.test.hit_rate,
            wrong_hit_rate=self.test.wrong_hit_rate,
            servable_hit_rate=self.test.servable_hit_rate,
        )
        return out


def _quantiles(values: np.ndarray) -> dict[str, float]:
    points = {"min": 0.0, "p25": 0.25, "p50": 0.5, "p75": 0.75, "max": 1.0}
    return {name: round(float(np.quantile(values, q)), 4) for name, q in points.items()}


def calibrate_semantic_cache(
    encoder: Any, max_wrong_hit_rate: float = 0.01, pairs: Sequence[Any] | None = None
) -> CacheCalibration:
    """Embed the labelled pairs, choose the threshold on dev, evaluate it on test.

    `pairs` defaults to the shipped `load_question_pairs()`; anything with `cached`, `asked`,
    `same`, `kind` and `split` ("dev"/"test") will do. Both splits must be present.
    `test_hit_rate_by_kind` is the share of each kind's test pairs served: for a look-alike,
    the share served wrongly.
    """
    from rag_service.datasets.question_pairs import load_question_pairs

    pairs = list(load_question_pairs() if pairs is None else pairs)
    dev = [p for p in pairs if p.split == "dev"]
    test = [p for p in pairs if p.split == "test"]
    if not dev or not test:
        raise ValueError(f"pairs need dev and test pairs, got dev {len(dev)}, test {len(test)}")
    sims = pair_similarities(encoder, [p.cached for p in pairs], [p.asked for p in pairs])
    scored = {
        split: (
            np.array([s for p, s in zip(pairs, sims, strict=True) if p.split == split]),
            [p.same for p in pairs if p.split == split],
        )
        for split in ("dev", "test")
    }
    dev_sims, dev_same = scored["dev"]
    chosen = choose_threshold(
        list(zip(dev_sims.tolist(), dev_same, strict=True)), max_wrong_hit_rate
    )
    test_eval = evaluate_pairs(chosen.threshold, *scored["test"])
    quantiles = {
        f"{split}_{'same' if label else 'different'}": _quantiles(values[np.array(same) == label])
        for split, (values, same) in scored.items()
        for label in (True, False)
        if label in same
    }
    test_pairs = [p for p in pairs if p.split == "test"]
    test_sims = scored["test"][0]
    by_kind = {
        kind: float(
            np.mean(
                [
                    s >= chosen.threshold
                    for p, s in zip(test_pairs, test_sims, strict=True)
                    if p.kind == kind
                ]
            )
        )
        for kind in sorted({p.kind for p in test_pairs})
    }
    return CacheCalibration(float(max_wrong_hit_rate), chosen, test_eval, by_kind, quantiles)
