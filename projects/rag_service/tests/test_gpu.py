"""The GPU path: where the model runs (decided without loading it), the CPU fallback, batching,
and `benchmarks/gpu_check.py`.

Most of these run anywhere: the placement decision takes the machine's facts as arguments, so
a CPU machine checks what a GPU machine would do. The CUDA tests skip, saying why, where torch
sees no GPU (every CI and developer machine here); run them on the device machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rag_service import costs
from rag_service.generation import collect
from rag_service.generation.hf import (
    PRECISIONS,
    Placement,
    PlacementError,
    bitsandbytes_available,
    choose_placement,
    generate_ids,
    load_kwargs,
)

PROJECT = Path(__file__).resolve().parents[1]
GPU_CHECK = PROJECT / "benchmarks" / "gpu_check.py"
NO_CUDA = "torch sees no CUDA device (torch.cuda.is_available() is False); run on the GPU machine"
NO_BNB = "bitsandbytes is not importable (carry it: benchmarks/gpu_prepare.sh)"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
needs_cuda_and_bnb = pytest.mark.skipif(
    not (torch.cuda.is_available() and bitsandbytes_available()),
    reason=NO_CUDA if not torch.cuda.is_available() else NO_BNB,
)

MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


def _gpu_check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", GPU_CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the placement decision, for machines with and without a GPU ---------------------------


@pytest.mark.parametrize("precision", PRECISIONS)
def test_auto_without_cuda_falls_back_to_cpu_fp32_and_says_why(precision):
    placement = choose_placement("auto", precision, cuda=False, bitsandbytes=False)
    assert (placement.device, placement.precision, placement.requested) == (
        "cpu",
        "fp32",
        precision,
    )
    assert "no CUDA device" in placement.fallback_reason
    if precision == "fp32":
        assert placement.label == "transformers fp32"
    else:
        assert f"instead of {precision}" in placement.fallback_reason
        assert placement.label == f"transformers fp32 (CPU fallback for {precision})"


@pytest.mark.parametrize("precision", ["fp16", "bf16", "int8", "nf4"])
def test_auto_with_cuda_keeps_the_precision(precision):
    placement = choose_placement("auto", precision, cuda=True, bitsandbytes=True)
    assert placement == Placement("cuda", precision, precision, None)
    assert placement.label == f"transformers {precision} cuda"


def test_asking_for_cuda_without_one_is_an_error_not_a_fallback():
    with pytest.raises(PlacementError, match=r"device='cuda'.*no CUDA device"):
        choose_placement("cuda", "fp16", cuda=False)


@pytest.mark.parametrize("precision", ["int8", "nf4"])
@pytest.mark.parametrize(
    ("device", "cuda", "bnb", "named", "not_named"),
    [
        ("cpu", False, True, "CUDA device", "bitsandbytes package"),
        ("cpu", True, True, "CUDA device", "bitsandbytes package"),
        ("cuda", True, False, "bitsandbytes package", "CUDA device"),
        ("auto", True, False, "bitsandbytes package", "CUDA device"),
        ("cpu", False, False, "CUDA device", None),
    ],
)
def test_bitsandbytes_precisions_name_exactly_what_is_missing(
    precision, device, cuda, bnb, named, not_named
):
    with pytest.raises(PlacementError, match=rf"precision='{precision}'") as error:
        choose_placement(device, precision, cuda=cuda, bitsandbytes=bnb)
    assert named in str(error.value)
    if not_named is None:  # both missing: both named
        assert "CUDA device" in str(error.value) and "bitsandbytes package" in str(error.value)
    else:
        assert not_named not in str(error.value)


def test_cpu_half_precisions_are_allowed_when_asked_for_explicitly():
    assert choose_placement("cpu", "bf16", cuda=False).precision == "bf16"


@pytest.mark.parametrize(
    ("device", "precision", "field"), [("gpu", "fp32", "device"), ("cpu", "int4", "precision")]
)
def test_unknown_device_or_precision_is_refused_naming_the_argument(device, precision, field):
    with pytest.raises(ValueError, match=field):
        choose_placement(device, precision, cuda=False)


def test_the_probe_matches_this_machine():
    placement = choose_placement("auto", "bf16")
    if torch.cuda.is_available():
        assert placement.device == "cuda" and placement.fallback_reason is None
    else:
        assert placement.device == "cpu" and placement.precision == "fp32"


def test_load_arguments_per_precision():
    assert load_kwargs("fp16") == {"dtype": torch.float16}
    assert load_kwargs("bf16") == {"dtype": torch.bfloat16}
    int8 = load_kwargs("int8")
    assert int8["dtype"] == torch.float16 and int8["quantization_config"].load_in_8bit
    nf4 = load_kwargs("nf4")["quantization_config"]
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4"
    assert nf4.bnb_4bit_compute_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        load_kwargs("fp8")


def test_generate_ids_refuses_a_non_positive_token_count_before_touching_the_model():
    with pytest.raises(ValueError, match="new_tokens"):
        generate_ids(None, None, None, 0, pad_token_id=2)


# --- gpu_check's pure parts -----------------------------------------------------------------


def test_gpu_check_refuses_bad_options():
    gpu_check = _gpu_check_module()
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--precisions", "fp32,int3"])
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--batch-sizes", "1,0"])
    args = gpu_check.parse_args(["--precisions", "bf16, nf4", "--batch-sizes", "1,8"])
    assert args.precisions == ["bf16", "nf4"] and args.batch_sizes == [1, 8]


def test_greedy_agreement_counts_the_common_prefix():
    gpu_check = _gpu_check_module()
    assert gpu_check.agreement([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert gpu_check.agreement([1, 2, 9, 4], [1, 2, 3, 4]) == 0.5  # nothing after a difference
    assert gpu_check.agreement([], [1, 2]) == 0.0


def test_cost_report_prices_each_measured_batch_with_the_cost_model():
    gpu_check = _gpu_check_module()
    cells = [
        {"batch_size": 1, "tokens_per_s": 100.0},
        {"batch_size": 8, "tokens_per_s": 800.0},
        {"batch_size": 32, "skipped": "time budget spent"},
    ]
    report = gpu_check.cost_report(cells, cpu_tokens_per_s=15.0, tokens_per_request=64, util=0.6)
    one, eight = report["per_batch"]
    assert [row["batch_size"] for row in report["per_batch"]] == [1, 8]  # skipped: not priced
    assert one["gpu_usd_per_1k_requests"] == pytest.approx(
        8 * eight["gpu_usd_per_1k_requests"], rel=1e-4
    )
    assert report["cpu_usd_per_1k_requests"] == pytest.approx(
        costs.cost_per_1k_requests(costs.CPU_2VCPU.hourly_price, 15.0, 64, 0.6), abs=1e-5
    )
    # 15 tok/s of 64-token answers on $0.10/h against 800 tok/s on $2.50/h: the GPU's 53x
    # capacity beats 25 CPUs' price once the load needs more than 25 of them
    cpu_rps, gpu_rps = 15.0 / 64, 800.0 / 64
    assert eight["break_even_rps"] == pytest.approx(
        costs.break_even_rps(costs.CPU_2VCPU, costs.GPU_H100, cpu_rps, gpu_rps, 0.6)
    )
    assert 0 < eight["break_even_rps"] < gpu_rps * 0.6


@pytest.mark.slow
def test_the_random_weight_architecture_is_smollm2s():
    """Where the GGUF cannot travel, the benchmark builds this architecture: it must be the
    file's (reads only the GGUF's metadata)."""
    from transformers import AutoConfig

    from rag_service.generation.model_files import GGUF_FILE, model_folder

    gpu_check = _gpu_check_module()
    real = AutoConfig.from_pretrained(model_folder(), gguf_file=GGUF_FILE)
    built = AutoConfig.for_model("llama", **gpu_check.SMOLLM2_135M_CONFIG)
    for key, value in gpu_check.SMOLLM2_135M_CONFIG.items():
        if key == "architectures":
            continue
        got = getattr(real, key, None)
        if key == "rope_theta":
            got = real.rope_parameters["rope_theta"]
            assert built.rope_parameters["rope_theta"] == value
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, key


# --- model loads: CPU fallback and batching (slow), CUDA only where there is one ------------


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: tests the GPU run")
def test_gpu_check_without_cuda_writes_its_reason_and_a_cpu_fallback_run(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT / "src"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    done = subprocess.run(
        [sys.executable, str(GPU_CHECK), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["gpu"] is None and "cuda" in report["reason"].lower()
    assert report["date"][:4].isdigit() and report["environment"]["torch"]
    fallback = report["cpu_fallback"]
    assert fallback["placement"] == "transformers fp32 (CPU fallback for fp16)"
    assert "no CUDA device" in fallback["fallback_reason"]
    assert fallback["tokens_per_s"] > 0 and 0 < fallback["ttft_s"] <= fallback["total_s"]
    assert fallback["peak_gpu_memory_mb"] is None


@pytest.mark.slow
def test_a_left_padded_batch_answers_like_each_request_alone():
    from rag_service.generation.hf import TransformersGenerator

    generator = TransformersGenerator(device="auto", precision="fp32")
    short = [{"role": "user", "content": "What is the capital of France?"}]
    answers = generator.generate_batch([short, MESSAGES], max_tokens=8)
    assert len(answers) == 2 and all(answer.strip() for answer in answers)
    assert answers == [collect(generator, chat, max_tokens=8).text for chat in (short, MESSAGES)]
    with pytest.raises(ValueError, match="batch"):
        generator.generate_batch([], max_tokens=8)
    with pytest.raises(ValueError, match="max_tokens"):
        generator.generate_batch([short], max_tokens=0)


@needs_cuda
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_cuda_answers(precision):
    from rag_service.generation.hf import TransformersGenerator

    generator = TransformersGenerator(device="cuda", precision=precision)
    assert generator.model.device.type == "cuda" and generator.fallback_reason is None
    assert generator.model.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    assert collect(generator, MESSAGES, max_tokens=8).text.strip()
    assert len(generator.generate_batch([MESSAGES] * 4, max_tokens=4)) == 4


@needs_cuda_and_bnb
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "nf4"])
def test_bitsandbytes_on_cuda_answers_and_shrinks_the_weights(precision):
    from rag_service.generation.hf import TransformersGenerator

    generator = TransformersGenerator(device="cuda", precision=precision)
    assert collect(generator, MESSAGES, max_tokens=8).text.strip()
    # fp32 weights are ~540 MB; 8-bit and 4-bit linear layers must take well under half
    assert generator.model.get_memory_footprint() < 270e6
