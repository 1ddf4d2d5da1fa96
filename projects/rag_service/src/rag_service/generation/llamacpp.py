"""SmolLM2's Q4_1 GGUF run natively quantized by llama.cpp, through llama-cpp-python.

llama.cpp computes directly on the 4-bit blocks (dequantising inside its matrix kernels), so
the weights stay 98 MB in memory and each decoding step reads a quarter of the bytes an fp32
model reads: on a CPU, where decoding is bound by memory bandwidth, that is where its speed
comes from. The chat template is the one stored in the GGUF file (ChatML for SmolLM2), applied
by llama-cpp-python itself, so the prompt is what the model was trained on.

`first_token_logprobs` is what an LLM judge needs (G-Eval's probability-weighted score): the
log-probabilities of the model's candidates for its first answer token. llama-cpp-python
computes them only for a model created with `logits_all=True` (it then keeps the logits of every
prompt position, n_ctx x 49,152 floats at most), so that is opt-in: `logprobs=True`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag_service.generation.base import Message, check_request
from rag_service.generation.model_files import gguf_path


class LlamaCppGenerator:
    """A llama.cpp model in this process; one request at a time (llama.cpp is not reentrant)."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        context_tokens: int = 2048,
        threads: int | None = None,
        seed: int = 0,
        logprobs: bool = False,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as error:  # the wheel is compiled on install; say how to get it
            raise ImportError(
                "llama-cpp-python is not installed: pip install llama-cpp-python "
                "(it compiles llama.cpp, about 5 minutes on 2 cores)"
            ) from error
        self.path = Path(path) if path is not None else gguf_path()
        self.context_tokens = context_tokens
        self.threads = threads or len(os.sched_getaffinity(0))
        self.logprobs = logprobs
        # llama.cpp prints its load log to stderr from C; verbose=False silences it.
        self._llama: Any = Llama(
            model_path=str(self.path),
            n_ctx=context_tokens,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            seed=seed,
            logits_all=logprobs,
            verbose=False,
        )
        self.name = f"llama.cpp {self.path.stem.rsplit('.', 1)[-1]}"
        self._formatter = self._chat_formatter()

    def _chat_formatter(self) -> Any:
        """The GGUF's chat template, compiled once: Jinja2 compilation per request would cost
        more than counting the tokens it is used for."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llama.metadata.get("tokenizer.chat_template")
        if template is None:
            raise ValueError(f"{self.path} carries no chat template")
        eos = self._token_text(self._llama.token_eos())
        bos = self._token_text(self._llama.token_bos())
        return Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)

    def _token_text(self, token_id: int) -> str:
        """A token's text, special tokens included (e.g. "<|im_end|>")."""
        return self._llama.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        prompt = self._chat_prompt(messages)
        return len(self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def _chat_prompt(self, messages: Sequence[Message]) -> str:
        """The ChatML text llama-cpp-python builds from the GGUF's template (for counting)."""
        return self._formatter(messages=list(messages)).prompt

    def first_token_logprobs(
        self, messages: Sequence[Message], top_k: int = 10
    ) -> dict[str, float]:
        """The `top_k` most likely first answer tokens (text -> natural-log probability).

        One greedy decoding step through `create_chat_completion`, so the prompt is built by the
        same chat template as `stream`'s. Token texts are as llama.cpp detokenizes them (a
        leading space is kept: " 4" and "4" are different tokens). Needs `logprobs=True` at
        construction.
        """
        check_request(messages, 1, 0.0)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 20:
            raise ValueError(f"top_k must be an integer in [1, 20], got {top_k!r}")
        if not self.logprobs:
            raise RuntimeError(
                "first_token_logprobs needs a model created with LlamaCppGenerator(logprobs=True)"
            )
        response = self._llama.create_chat_completion(
            messages=list(messages),
            max_tokens=1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=top_k,
        )
        content = (response["choices"][0].get("logprobs") or {}).get("content") or []
        if not content:  # the model ended its turn at once: no token, no distribution
            return {}
        return {item["token"]: float(item["logprob"]) for item in content[0]["top_logprobs"]}

    def stream(
        self, messages: Sequence[Message], max_tokens: int = 64, temperature: float = 0.0
    ) -> Iterator[str]:
        check_request(messages, max_tokens, temperature)
        chunks = self._llama.create_chat_completion(
            messages=list(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
        )
        # Closing this generator (a client gone) closes llama-cpp-python's, which stops
        # decoding at the next token: no work continues for an answer nobody reads.
        with contextlib.closing(chunks):
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def close(self) -> None:
        """Free the model's memory now rather than at garbage collection."""
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()
