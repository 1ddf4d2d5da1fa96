"""The "I don't know" gate: answer only when retrieval found something relevant.

A grounded prompt built from irrelevant passages still gets an answer, fluent and wrong. The
service therefore checks, before generating, how well the question matches the corpus at
all, and replies "I don't know." below a threshold.

The feature is the dense retriever's best chunk score: the cosine between the question's
MiniLM vector and its nearest chunk, from an exact index. It is an absolute scale (the same
for every question), which the alternatives are not: BM25 scores grow with the number and
rarity of the query's words, and the hybrid score-fusion score is min-max normalised per
query, so its best document scores 1 whatever it is.

The threshold is chosen on the dev split only (`choose_idk_threshold`): the highest threshold
that wrongly refuses at most `max_false_idk` of the in-domain dev questions (the pydoc dev
split, which the corpus answers), reporting how many off-topic dev questions it catches
(`datasets/offtopic.py`). `evaluate_idk_threshold` then reports both rates on the test splits,
the numbers to quote. `measure_idk` runs the whole measurement for one encoder.

A question is refused when its score is strictly below the threshold; equal passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

DEFAULT_IDK_THRESHOLD = 0.4188
"""Best-chunk cosine below which the service answers "I don't know" (MiniLM fp32, exact
index over the documentation corpus's structure chunks; measured 2026-12-06).

`measure_idk` with a 5 % budget on the dev split chose 0.41889 (refuses 6 of 132 in-domain
dev questions, catches 48 of 62 off-topic ones); on test it refused 13 of 262 in-domain
questions (5.0 %) and caught 45 of 58 off-topic ones (77.6 %). Another encoder, precision or
corpus moves the scores: measure again rather than reuse this number.
"""

__all__ = [
    "DEFAULT_IDK_THRESHOLD",
    "ChunkSearcher",
    "IdkEvaluation",
    "IdkReport",
    "IdkThreshold",
    "choose_idk_threshold",
    "evaluate_idk_threshold",
    "measure_idk",
    "should_abstain",
    "top_scores",
]


class ChunkSearcher(Protocol):
    """Anything that ranks chunks for queries, best first (`retrieval.DenseRetriever`)."""

    def chunk_hits(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]: ...


def top_scores(retriever: ChunkSearcher, queries: Sequence[str]) -> np.ndarray:
    """The best chunk score of each query, float64, in query order.

    With `DenseRetriever` over an exact (flat inner product) index of unit vectors this is the
    cosine of the nearest chunk. An approximate index may miss the true nearest chunk and so
    report a lower score: calibrate and serve with the same kind of index.
    """
    if isinstance(queries, str):
        raise ValueError("queries must be a sequence of str, not a single str (wrap it in a list)")
    queries = list(queries)
    if not queries:
        raise ValueError("queries is empty")
    hits = retriever.chunk_hits(queries, 1)
    if len(hits) != len(queries):
        raise ValueError(f"the retriever answered {len(hits)} of {len(queries)} queries")
    scores = np.full(len(queries), -np.inf)
    for position, ranked in enumerate(hits):
        if ranked:
            scores[position] = float(ranked[0][1])
    return scores


def _scores(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d sequence of scores, got {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN")
    return array


def _threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    if math.isnan(threshold):
        raise ValueError("threshold must not be NaN")
    return float(threshold)


def should_abstain(score: float, threshold: float) -> bool:
    """True when the question's best score is below the threshold: reply "I don't know."."""
    return bool(float(score) < _threshold(threshold))


@dataclass(frozen=True)
class IdkThreshold:
    """A threshold chosen on dev and what it does there.

    false_idk_rate: share of in-domain dev questions refused (<= max_false_idk);
    catch_rate: share of off-topic dev questions refused.
    """

    threshold: float
    max_false_idk: float
    false_idk_rate: float
    catch_rate: float
    in_domain: int
    off_topic: int


@dataclass(frozen=True)
class IdkEvaluation:
    """What a threshold does on held-out questions: counts and rates."""

    threshold: float
    false_idk: int
    in_domain: int
    caught: int
    off_topic: int

    @property
    def false_idk_rate(self) -> float:
        """Share of in-domain questions wrongly answered "I don't know"."""
        return self.false_idk / self.in_domain

    @property
    def catch_rate(self) -> float:
        """Share of off-topic questions answered "I don't know"."""
        return self.caught / self.off_topic


def choose_idk_threshold(
    in_domain_scores: Sequence[float] | np.ndarray,
    off_topic_scores: Sequence[float] | np.ndarray,
    max_false_idk: float = 0.05,
) -> IdkThreshold:
    """The highest threshold that refuses at most `max_false_idk` of the in-domain questions.

    Refusing is `score < threshold`, so with n in-domain scores sorted ascending and
    k = floor(max_false_idk * n) refusals allowed, the answer is the (k+1)-th smallest score:
    it refuses the k below it (fewer when they tie with it), and any higher threshold refuses
    k + 1. The highest qualifying threshold catches the most off-topic questions; the
    off-topic scores do not move it, they only report its catch rate. Choose on dev; quote
    `evaluate_idk_threshold` on test. Raises ValueError for empty or NaN scores or a budget
    outside [0, 1).
    """
    if isinstance(max_false_idk, bool) or not isinstance(max_false_idk, int | float):
        raise ValueError(f"max_false_idk must be a number in [0, 1), got {max_false_idk!r}")
    if not 0 <= max_false_idk < 1:
        raise ValueError(f"max_false_idk must be in [0, 1), got {max_false_idk!r}")
    in_domain = np.sort(_scores("in_domain_scores", in_domain_scores))
    off_topic = _scores("off_topic_scores", off_topic_scores)
    allowed = math.floor(max_false_idk * in_domain.size + 1e-9)
    threshold = float(in_domain[allowed])
    if not math.isfinite(threshold):
        raise ValueError(f"in_domain_scores: the chosen score {threshold} is not finite")
    return IdkThreshold(
        threshold=threshold,
        max_false_idk=float(max_false_idk),
        false_idk_rate=float(np.mean(in_domain < threshold)),
        catch_rate=float(np.mean(off_topic < threshold)),
        in_domain=int(in_domain.size),
        off_topic=int(off_topic.size),
    )


def evaluate_idk_threshold(
    threshold: float,
    in_domain_scores: Sequence[float] | np.ndarray,
    off_topic_scores: Sequence[float] | np.ndarray,
) -> IdkEvaluation:
    """How often `threshold` refuses in-domain questions (wrongly) and off-topic ones (rightly)."""
    threshold = _threshold(threshold)
    in_domain = _scores("in_domain_scores", in_domain_scores)
    off_topic = _scores("off_topic_scores", off_topic_scores)
    return IdkEvaluation(
        threshold=threshold,
        false_idk=int(np.sum(in_domain < threshold)),
        in_domain=int(in_domain.size),
        caught=int(np.sum(off_topic < threshold)),
        off_topic=int(off_topic.size),
    )


@dataclass(frozen=True)
class IdkReport:
    """The dev choice, the test evaluation and the test catch rate per off-topic kind."""

    chosen: IdkThreshold
    test: IdkEvaluation
    test_catch_by_kind: dict[str, float]
    score_quantiles: dict[str, dict[str, float]]
    chunks: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, rates included (properties are not dataclass fields)."""
        out = asdict(self)
        out["test"]["false_idk_rate"] = self.test.false_idk_rate
        out["test"]["catch_rate"] = self.test.catch_rate
        return out


def _quantiles(scores: np.ndarray) -> dict[str, float]:
    points = {"min": 0.0, "p05": 0.05, "p50": 0.5, "p95": 0.95, "max": 1.0}
    return {name: round(float(np.quantile(scores, q)), 4) for name, q in points.items()}


def measure_idk(
    encoder: Any,
    *,
    max_false_idk: float = 0.05,
    retriever: ChunkSearcher | None = None,
    log: Callable[[str], None] | None = None,
) -> IdkReport:
    """Choose the threshold on dev and evaluate it on test, for one encoder.

    In-domain: the pydoc questions; off-topic: `datasets/offtopic.py`; both split dev/test.
    `retriever` defaults to a `DenseRetriever` with `encoder` over the documentation corpus's
    structure chunks in an exact FAISS index (embedding ~2,000 chunks: about 75 s in fp32 on
    2 cores, free through a `CachedEncoder`); pass one to reuse it.
    """
    from rag_service.datasets.offtopic import load_offtopic_questions
    from rag_service.datasets.pydoc import load_questions

    if retriever is None:
        from rag_service.datasets.pydoc import pydoc_dataset
        from rag_service.retrieval import DenseRetriever, chunk_dataset

        chunks = chunk_dataset(pydoc_dataset(), "structure")
        if log:
            log(f"idk: embedding {len(chunks)} structure chunks")
        retriever = DenseRetriever(chunks, encoder)
    chunk_count = len(getattr(retriever, "chunks", []))
    pydoc = load_questions()
    offtopic = load_offtopic_questions()
    scores: dict[str, dict[str, np.ndarray]] = {}
    for split in ("dev", "test"):
        scores[split] = {
            "in_domain": top_scores(retriever, [q.query for q in pydoc if q.split == split]),
            "off_topic": top_scores(retriever, [q.query for q in offtopic if q.split == split]),
        }
    chosen = choose_idk_threshold(
        scores["dev"]["in_domain"], scores["dev"]["off_topic"], max_false_idk
    )
    test = evaluate_idk_threshold(
        chosen.threshold, scores["test"]["in_domain"], scores["test"]["off_topic"]
    )
    test_off = [q for q in offtopic if q.split == "test"]
    by_kind: dict[str, float] = {}
    for kind in sorted({q.kind for q in test_off}):
        mask = np.array([q.kind == kind for q in test_off])
        by_kind[kind] = float(np.mean(scores["test"]["off_topic"][mask] < chosen.threshold))
    quantiles = {
        f"{split}_{group}": _quantiles(values)
        for split, groups in scores.items()
        for group, values in groups.items()
    }
    return IdkReport(chosen, test, by_kind, quantiles, chunk_count)
