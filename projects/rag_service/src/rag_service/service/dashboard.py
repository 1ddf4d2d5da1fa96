"""The cost dashboard's numbers, computed from the request log (the page is dashboard.html).

Per variant: requests, latency percentiles (all, and cache hits alone), time to first token,
tokens, cache hit rate, guardrail actions, feedback, and the cost per 1,000 requests from the
Phase 0 cost model (`rag_service.costs`): the instance's hourly price over the answers it can
generate an hour at the decoding speed this service measured, where a cache hit costs no
generation. The GPU side of the break-even uses a GPU decoding rate that is an ASSUMPTION
unless `RAG_GPU_TOKENS_PER_S` is set from a measurement (`make gpu-check`); the page says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag_service import costs

TARGET_UTILIZATION = 0.6
GPU_TOKENS_PER_S_ASSUMED = 1500.0
"""ASSUMPTION (no GPU measured in this repository yet): aggregate decoding rate of a small model
on one 24 GB GPU with continuous batching. Replace it with `make gpu-check` output."""


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}


def _variant_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    hits = [r for r in rows if r["cache"] != "none"]
    generated = [r for r in rows if r["status"] == "answered" and r["cache"] == "none"]
    gen_seconds = sum(max(r["latency_ms"] - (r["ttft_ms"] or 0.0), 1e-3) / 1000 for r in generated)
    gen_tokens = sum(r["completion_tokens"] for r in generated)
    ratings = [r["feedback"] for r in rows if r["feedback"] is not None]
    actions: Counter[str] = Counter()
    for r in rows:
        actions.update(a for a in (r["guardrails"] or "").split(",") if a)
    return {
        "requests": n,
        "status": dict(Counter(r["status"] for r in rows)),
        "latency_ms": _percentiles([r["latency_ms"] for r in rows]),
        "latency_ms_cache_hits": _percentiles([r["latency_ms"] for r in hits]),
        "ttft_ms": _percentiles([r["ttft_ms"] for r in generated if r["ttft_ms"] is not None]),
        "cache_hit_rate": round(len(hits) / n, 4) if n else 0.0,
        "prompt_tokens_mean": round(float(np.mean([r["prompt_tokens"] for r in generated])), 1)
        if generated
        else 0.0,
        "completion_tokens_mean": round(gen_tokens / n, 2) if n else 0.0,
        "decode_tokens_per_s": round(gen_tokens / gen_seconds, 2) if gen_seconds > 0 else None,
        "guardrail_actions": dict(actions),
        "feedback": {"n": len(ratings), "helpful_rate": (
            round(sum(1 for x in ratings if x > 0) / len(ratings), 4) if ratings else None
        )},
    }  # fmt: skip


def _cost(summary: dict[str, Any], cpu: costs.Instance) -> float | None:
    rate = summary["decode_tokens_per_s"]
    per_request = summary["completion_tokens_mean"]
    if not rate or not per_request:
        return None
    return round(
        costs.cost_per_1k_requests(cpu.hourly_price, rate, per_request, TARGET_UTILIZATION), 6
    )


def dashboard_data(
    rows: list[dict[str, Any]],
    variants: Sequence[str],
    *,
    cpu: costs.Instance = costs.CPU_2VCPU,
    gpu: costs.Instance = costs.GPU_24GB,
    gpu_tokens_per_s: float | None = None,
) -> dict[str, Any]:
    """Everything the page draws, from request-log rows (`RequestLog.rows()`)."""
    by_variant = {name: [r for r in rows if r["variant"] == name] for name in variants}
    summaries = {name: _variant_summary(group) for name, group in by_variant.items()}
    for summary in summaries.values():
        summary["cost_per_1k_usd"] = _cost(summary, cpu)
    measured = [s for s in summaries.values() if s["decode_tokens_per_s"]]
    break_even: dict[str, Any] | None = None
    if measured:
        rate = float(np.mean([s["decode_tokens_per_s"] for s in measured]))
        tokens = max(float(np.mean([s["completion_tokens_mean"] for s in measured])), 1.0)
        gpu_rate = gpu_tokens_per_s or GPU_TOKENS_PER_S_ASSUMED
        cpu_rps = costs.requests_per_second(rate, tokens)
        gpu_rps = costs.requests_per_second(gpu_rate, tokens)
        curve = costs.cost_curve(
            cpu, gpu, cpu_rps, gpu_rps, TARGET_UTILIZATION,
            max_rps=max(gpu_rps * 2.0, cpu_rps * 4.0), points=60,
        )  # fmt: skip
        break_even = {
            "cpu": {"instance": cpu.name, "hourly_usd": cpu.hourly_price, "tokens_per_s": rate},
            "gpu": {
                "instance": gpu.name,
                "hourly_usd": gpu.hourly_price,
                "tokens_per_s": gpu_rate,
                "measured": gpu_tokens_per_s is not None,
            },
            "tokens_per_request": tokens,
            "break_even_rps": costs.break_even_rps(cpu, gpu, cpu_rps, gpu_rps, TARGET_UTILIZATION),
            "curve": {
                "load_rps": [round(float(x), 4) for x in curve.load_rps],
                "cpu_hourly": [float(x) for x in curve.cpu_hourly],
                "gpu_hourly": [float(x) for x in curve.gpu_hourly],
            },
        }
    actions: Counter[str] = Counter()
    for row in rows:  # refused requests have no variant: they are counted here
        actions.update(a for a in (row["guardrails"] or "").split(",") if a)
    return {
        "requests": len(rows),
        "guardrail_actions": dict(actions),
        "variants": summaries,
        "break_even": break_even,
        "prices_are_assumptions": True,
    }
