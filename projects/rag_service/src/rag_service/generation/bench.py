"""Generation measured the same way for every runtime: grounded prompts, greedy answers.

The prompts are what the service will send: a documentation question with the BM25 passages
that fit a token budget, under the grounded system prompt. Every generator answers every prompt
with the same `max_tokens` at temperature 0, one request at a time, after one untimed warm-up
request; reported per runtime are the medians of time to first token and of decoding speed,
overall tokens/s (completion tokens over wall time, prompt processing included), the process's
peak resident memory after the run, its speed relative to the baseline runtime, and how often
its answer begins with the same words as the baseline's.
"""

from __future__ import annotations

import resource
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from rag_service.generation.base import Generator, Message, collect

AGREEMENT_WORDS = 5
"""Answers 'agree' when their first five words are equal (case and punctuation kept)."""


def grounded_prompts(
    count: int = 8, budget_tokens: int = 384, split: str = "test"
) -> list[list[Message]]:
    """`count` documentation questions (every n-th of the split, deterministic), each with the
    BM25 passages that fit `budget_tokens` words-as-tokens: real prompts of a realistic size."""
    from rag_service.corpus.chunking import chunk_corpus
    from rag_service.corpus.documents import documentation_corpus
    from rag_service.datasets.pydoc import pydoc_dataset
    from rag_service.prompting import Passage, build_messages, pack_passages
    from rag_service.retrieval import LexicalRetriever, TextDocument

    documents = [TextDocument(d.id, d.text) for d in documentation_corpus()]
    chunks = chunk_corpus(documents, "structure")
    retriever = LexicalRetriever(chunks)
    by_id = {chunk.id: chunk for chunk in chunks}
    questions = pydoc_dataset(split).queries
    ids = sorted(questions)[:: max(1, len(questions) // count)][:count]
    texts = [questions[q] for q in ids]
    prompts = []
    for question, hits in zip(texts, retriever.chunk_hits(texts, 10), strict=True):
        passages = [Passage(cid, by_id[cid].text, score) for cid, score in hits]
        packed = pack_passages(passages, budget_tokens, lambda text: len(text.split()))
        prompts.append(build_messages(question, packed))
    return prompts


def peak_rss_mb() -> float:
    """The process's peak resident set so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_generators(
    factories: Sequence[tuple[str, Callable[[], Generator]]],
    prompts: Sequence[Sequence[Message]],
    max_tokens: int = 64,
    *,
    baseline: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Load each generator in turn, answer every prompt, and compare each with `baseline`
    (a name in `factories`; the first by default).

    Peak memory is the process's high-water mark, so runtimes are measured smallest first
    when they share a process; run each in its own process for exact per-runtime memory.
    """
    names = [name for name, _ in factories]
    baseline = baseline or names[0]
    if baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not one of {names}")
    results: dict[str, Any] = {}
    answers_by_runtime: dict[str, list[str]] = {}
    for name, make in factories:
        log(f"generation: loading {name}")
        started = resource.getrusage(resource.RUSAGE_SELF)
        generator = make()
        collect(generator, prompts[0], max_tokens=4)  # warm-up: first-call allocations
        answers = []
        for position, messages in enumerate(prompts):
            answers.append(collect(generator, messages, max_tokens=max_tokens))
            log(f"  {name} prompt {position + 1}/{len(prompts)}: {answers[-1].total_s:.2f} s")
        answers_by_runtime[name] = [answer.text for answer in answers]
        completion = sum(a.completion_tokens for a in answers)
        wall = sum(a.total_s for a in answers)
        results[name] = {
            "prompts": len(answers),
            "prompt_tokens_mean": statistics.fmean(a.prompt_tokens for a in answers),
            "completion_tokens": completion,
            "tokens_per_s": completion / wall if wall else 0.0,
            "decode_tokens_per_s_median": statistics.median(a.decode_tokens_per_s for a in answers),
            "ttft_s_median": statistics.median(a.ttft_s for a in answers),
            "ttft_s_max": max(a.ttft_s for a in answers),
            "peak_rss_mb": peak_rss_mb(),
            "cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime - started.ru_utime,
            "sample_answer": answers[0].text[:200],
        }
        close = getattr(generator, "close", None)
        if close is not None:
            close()
        del generator
    base = results[baseline]["tokens_per_s"]
    for name in names:
        speed = results[name]["tokens_per_s"]
        results[name]["speedup_vs_baseline"] = speed / base if base else None
        results[name]["agreement_with_baseline"] = _agreement(
            answers_by_runtime[name], answers_by_runtime[baseline]
        )
        results[name]["answers"] = answers_by_runtime[name]
    return {"baseline": baseline, "max_tokens": max_tokens, "runtimes": results}


def _agreement(texts: Sequence[str], baseline: Sequence[str]) -> float:
    same = sum(
        a.split()[:AGREEMENT_WORDS] == b.split()[:AGREEMENT_WORDS]
        for a, b in zip(texts, baseline, strict=True)
    )
    return same / len(texts) if texts else 0.0
