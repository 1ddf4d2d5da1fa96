"""The same GGUF weights dequantised to fp32 in transformers: the CPU baseline.

transformers reads the GGUF file (with the `gguf` package) and expands every 4-bit block to
float32, so this model computes exactly what llama.cpp's Q4_1 weights encode, only in fp32
arithmetic and with PyTorch's kernels: any difference in speed between the two is the runtime
and the number format, not different weights. Loading takes ~20 s (the dequantisation); the
fp32 model holds ~540 MB.

Streaming uses transformers' TextIteratorStreamer: `generate` runs in a worker thread and
pushes decoded text into a queue. A stopping criterion checks a flag that closing the stream
sets, so a client that goes away stops the worker at the next token.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from rag_service.generation.base import Message, check_request
from rag_service.generation.model_files import GGUF_FILE, model_folder

STREAM_TIMEOUT_S = 120.0
"""How long the stream waits for the next piece before it declares the worker stuck."""


class TransformersGenerator:
    """SmolLM2 in fp32 on CPU via transformers, one request at a time."""

    def __init__(self, *, threads: int | None = None, context_tokens: int = 2048) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = model_folder()
        self.threads = threads or len(os.sched_getaffinity(0))
        torch.set_num_threads(self.threads)
        self.tokenizer: Any = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
        self.model: Any = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=GGUF_FILE, dtype=torch.float32
        ).eval()
        self.context_tokens = context_tokens
        self.name = "transformers fp32"
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, messages: Sequence[Message]) -> Any:
        return self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return int(self._prompt_ids(messages)["input_ids"].shape[1])

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
