"""Cheap, deterministic answer metrics: groundedness in the passages, relevance to the question.

Both run in microseconds without a model (relevance can optionally use MiniLM), so they can score
every answer the service gives, where an LLM judge can afford only a sample.

- **Groundedness** = the share of the answer's distinct content sentences that the passages
  support. A sentence is *supported* when at least `SUPPORT_THRESHOLD` (0.7) of its content words
  (lower-cased, stop words removed, Snowball-stemmed) occur somewhere in the passages. Word
  containment, not embedding similarity, because groundedness asks "did these words come from the
  sources?": MiniLM (fp32) puts "sorted sorts the list in place" at cosine 0.82 to "sorted
  returns a new list" and 0.90 to its negation "sort does not sort the list in place" (measured
  2026-12-06), while containment at least requires the answer's own terms to be in the sources.
  It cannot see a negation flipped or two true facts joined wrongly; the G-Eval judge and human
  labels are for that. Citations (`[chunk id]`) are stripped first, so ids never count as
  support; sentences repeated word for word count once (a small model's loops must not multiply
  one claim). 0.7 was fixed before the labels were written, not tuned on them.
- **Answer relevance** = how much the answer is about the question: with an encoder, the MiniLM
  cosine between question and answer; without one, the share of the question's content words that
  the answer uses. Both reward topical answers, not correct ones.
- **"I don't know."** (the grounded prompt's abstention) is handled explicitly: it makes no claim,
  so its groundedness is 1.0, and it answers nothing, so its relevance is 0.0; both results carry
  `abstained=True` so a report can count abstentions instead of averaging them away.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from rag_service.prompting import CITATION, IDK_ANSWER, Passage

SUPPORT_THRESHOLD = 0.7
"""A sentence is supported when this share of its content words occurs in the passages."""
MIN_CONTENT_WORDS = 2
"""Fewer content words than this is not a claim ("The answer is:", "Here's an example:")."""

_WORD = re.compile(r"[A-Za-z0-9_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CODE_FENCE = re.compile(r"```")


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN  # the list BM25 uses in lexical.py

    return frozenset(STOPWORDS_EN) | {"answer", "question", "following", "use", "can"}


@cache
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def content_words(text: str) -> list[str]:
    """Lower-cased, Snowball-stemmed words of `text` without stop words, in order."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in _stopwords()]
    return _stemmer().stemWords(kept) if kept else []


def strip_citations(answer: str) -> str:
    """`answer` without its `[chunk id]` citations."""
    return CITATION.sub(" ", answer)


def is_abstention(answer: str) -> bool:
    """Whether the answer is the grounded prompt's "I don't know." (case and trailing spaces
    ignored); an answer that hedges and then claims something is not an abstention."""
    return answer.strip().rstrip(".").lower() == IDK_ANSWER.rstrip(".").lower()


def split_sentences(text: str) -> list[str]:
    """Sentences and lines of `text` (code fences removed), stripped, empty ones dropped."""
    text = _CODE_FENCE.sub("\n", text)
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


@dataclass(frozen=True)
class SentenceSupport:
    """One content sentence and how much of it the passages contain."""

    sentence: str
    containment: float
    """Share of the sentence's content words found in the passages, in [0, 1]."""
    supported: bool


@dataclass(frozen=True)
class Groundedness:
    """Share of the answer's distinct content sentences that the passages support."""

    score: float
    sentences: list[SentenceSupport]
    abstained: bool = False

    @property
    def unsupported(self) -> list[str]:
        """The sentences to show a reviewer: claims the passages do not contain."""
        return [s.sentence for s in self.sentences if not s.supported]


@dataclass(frozen=True)
class Relevance:
    """How much the answer is about the question, in [0, 1] (cosine clipped at 0)."""

    score: float
    method: str
    """"overlap" (content words) or "cosine" (an encoder's embeddings)."""
    abstained: bool = False


def _check_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _passage_texts(passages: Sequence[Passage | str]) -> list[str]:
    if isinstance(passages, str):
        raise ValueError("cited_passages must be a sequence of passages, not one string")
    texts = []
    for position, passage in enumerate(passages):
        if isinstance(passage, Passage):
            texts.append(passage.text)
        elif isinstance(passage, str):
            texts.append(passage)
        else:
            raise ValueError(
                f"cited_passages[{position}] must be a Passage or a string, "
                f"got {type(passage).__name__}"
            )
    return texts


def groundedness(
    answer: str,
    cited_passages: Sequence[Passage | str],
    threshold: float = SUPPORT_THRESHOLD,
) -> Groundedness:
    """Share of `answer`'s distinct content sentences supported by `cited_passages`.

    Pass the passages the answer cites (`prompting.extract_citations`) for the strict reading, or
    every passage of the prompt to ask "is it in the context at all" (what an answer that forgot
    to cite can still earn). No passages supports nothing. An answer with no content sentence
    (empty, or only "The answer is:") scores 0.0: it says nothing that could be grounded.
    """
    answer = _check_text(answer, "answer")
    texts = _passage_texts(cited_passages)
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if is_abstention(answer):
        return Groundedness(1.0, [], abstained=True)
    vocabulary = {word for text in texts for word in content_words(text)}
    seen: set[tuple[str, ...]] = set()
    results: list[SentenceSupport] = []
    for sentence in split_sentences(strip_citations(answer)):
        words = content_words(sentence)
        key = tuple(words)
        if len(words) < MIN_CONTENT_WORDS or key in seen:
            continue
        seen.add(key)
        containment = sum(word in vocabulary for word in words) / len(words)
        results.append(SentenceSupport(sentence, containment, containment >= threshold))
    score = sum(r.supported for r in results) / len(results) if results else 0.0
    return Groundedness(score, results)


def answer_relevance(question: str, answer: str, encoder: Any = None) -> Relevance:
    """How much `answer` is about `question`, in [0, 1].

    With `encoder` (anything with `encode(texts) -> L2-normalised vectors`, e.g.
    `embeddings.make_encoder()`), the cosine of the two embeddings clipped at 0; without, the share
    of the question's content words that the answer uses (a question with none scores 0).
    "I don't know." scores 0.0 with `abstained=True`: it does not answer, whatever its topic.
    """
    question = _check_text(question, "question")
    answer = _check_text(answer, "answer")
    if not question.strip():
        raise ValueError("question must not be empty")
    method = "overlap" if encoder is None else "cosine"
    if is_abstention(answer):
        return Relevance(0.0, method, abstained=True)
    text = strip_citations(answer)
    if not text.strip():
        return Relevance(0.0, method)
    if encoder is not None:
        vectors = encoder.encode([question, text])
        return Relevance(max(0.0, float(vectors[0] @ vectors[1])), method)
    asked = set(content_words(question))
    if not asked:
        return Relevance(0.0, method)
    used = set(content_words(text))
    return Relevance(len(asked & used) / len(asked), method)


def to_scale(value: float, low: int = 1, high: int = 5) -> int:
    """A [0, 1] metric on a `low`..`high` label scale by a fixed linear map (not calibrated:
    for exact agreement with labels; rank correlations need no map)."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"value must be in [0, 1], got {value!r}")
    return low + round(value * (high - low))
