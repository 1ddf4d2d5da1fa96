"""Embedding throughput per precision on this machine, beside sentence-transformers.

Speed alone would favour the most aggressive quantisation; each precision is therefore reported
with its cosine to fp32 on the same texts (mean and worst), the number that predicts whether
retrieval quality survives. sentence-transformers' own `encode` on the same model folder is the
peer: it shows what the plain library gives, so a speed-up is measured against a real
baseline rather than against our own fp32 path.

Method: every runner is loaded first (load time reported apart) and warmed up untimed. Then
the runners take turns on the same slices of text (round robin), each turn timed, until the
slowest runner has spent `seconds`. Taking turns matters on a shared machine: a burst of
background load hits every runner alike instead of whichever happened to run at that moment,
and every runner ends having encoded exactly the same texts, so cosines compare like with like.
docs/s = texts encoded / seconds spent encoding them. The texts are shuffled with a fixed seed
first, so a run that stops early still sees a representative mix of lengths.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_service.embeddings.encoder import (
    DEFAULT_BATCH_TOKENS,
    MODEL_ID,
    PRECISIONS,
    check_texts,
    load_tokenizer,
    make_encoder,
    model_path,
    tokenize,
    usable_cores,
)

PEER = "sentence-transformers"
Runner = Callable[[list[str]], np.ndarray]


def interleaved_timing(
    runners: Mapping[str, Runner], texts: Sequence[str], seconds: float, slice_size: int = 64
) -> dict[str, tuple[np.ndarray, float]]:
    """Round-robin timing: {name: (vectors of the texts encoded, seconds spent)}.

    All runners encode the same prefix of `texts`, slice by slice, until the slowest one has
    spent `seconds` or the texts run out.
    """
    items = list(texts)
    for encode in runners.values():
        encode(items[: min(8, len(items))])  # warm-up, untimed
    spent = dict.fromkeys(runners, 0.0)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in runners}
    done = 0
    while done < len(items) and max(spent.values()) < seconds:
        part = items[done : done + slice_size]
        for name, encode in runners.items():
            start = time.perf_counter()
            vectors = np.asarray(encode(part), dtype=np.float32)
            spent[name] += time.perf_counter() - start
            parts[name].append(vectors)
        done += len(part)
    return {name: (np.vstack(parts[name]), spent[name]) for name in runners}


def measure_throughput(
    texts: Sequence[str],
    precisions: Sequence[str] = PRECISIONS,
    seconds: float = 20.0,
    limit: int | None = None,
    *,
    cache_dir: str | Path | None = None,
    peer: bool = True,
    slice_size: int = 64,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    encoder_options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """docs/s per precision (and for sentence-transformers), with cosines to fp32.

    texts: real corpus text (chunks); shuffled with `seed`, then `limit` keeps the first N.
    seconds: encoding time of the slowest runner (the others spend less on the same texts).
    cache_dir: where ONNX exports are cached (see onnx_export.default_cache_dir).
    encoder_options: extra make_encoder keywords per precision, e.g.
    {"int8": {"int8_scheme": "all-linear"}}.

    Returns {"model_id", "cores", "torch_threads", "texts", "mean_tokens", "seconds",
    "precisions": {name: {"variant", "docs", "seconds", "docs_per_s", "load_s",
    "cosine_to_fp32_mean", "cosine_to_fp32_min"}}, "peer": the same for sentence-transformers
    (variant = its version) or None}.
    """
    import torch

    items = check_texts(texts)
    random.Random(seed).shuffle(items)
    items = items[:limit]
    if not items:
        raise ValueError("measure_throughput needs at least one text")
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        raise ValueError(f"unknown precisions {unknown}; expected some of {PRECISIONS}")
    options = encoder_options or {}
    runners: dict[str, Runner] = {}
    info: dict[str, dict[str, Any]] = {}
    for precision in dict.fromkeys(["fp32", *precisions]):  # fp32 is the cosine reference
        started = time.perf_counter()
        encoder = make_encoder(precision, cache_dir, **options.get(precision, {}))
        info[precision] = {"variant": encoder.variant, "load_s": time.perf_counter() - started}
        runners[precision] = lambda part, e=encoder: e.encode(part, batch_tokens)
    if peer:
        from sentence_transformers import SentenceTransformer

        started = time.perf_counter()
        model = SentenceTransformer(str(model_path()), device="cpu")
        info[PEER] = {"variant": _peer_version(), "load_s": time.perf_counter() - started}
        runners[PEER] = lambda part: model.encode(
            part, batch_size=32, normalize_embeddings=True, show_progress_bar=False
        )
    timed = interleaved_timing(runners, items, seconds, slice_size)
    reference = timed["fp32"][0]
    rows: dict[str, dict[str, Any]] = {}
    for name, (vectors, elapsed) in timed.items():
        cos = np.sum(vectors * reference, axis=1)
        rows[name] = {
            **info[name],
            "docs": len(vectors),
            "seconds": elapsed,
            "docs_per_s": len(vectors) / elapsed,
            "cosine_to_fp32_mean": float(cos.mean()),
            "cosine_to_fp32_min": float(cos.min()),
        }
    encoded = items[: len(reference)]
    tokens = tokenize(load_tokenizer(), encoded)
    return {
        "model_id": MODEL_ID,
        "cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "texts": len(encoded),
        "mean_tokens": float(np.mean([len(row) for row in tokens.ids])),
        "seconds": seconds,
        "precisions": {p: rows[p] for p in precisions},
        "peer": rows.get(PEER),
    }


def _peer_version() -> str:
    from importlib.metadata import version

    return version("sentence-transformers")
