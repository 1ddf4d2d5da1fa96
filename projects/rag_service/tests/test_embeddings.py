"""The encoder: pooling and normalisation, fp32 equal to sentence-transformers, int8 and ONNX
close to fp32 (floors measured on this corpus, asserted with margin), truncation reported,
empty and non-str input, length batching invisible in the results, and the ONNX export cache.

The model loads once per precision for the whole module (module-scoped fixtures); the ONNX files
go to a module temporary folder, exported once and reused by the cache tests.
"""

from __future__ import annotations

import json
import os
from pydoc_data.topics import topics

import numpy as np
import pytest

from rag_service.embeddings.encoder import (
    DIM,
    MAX_TOKENS,
    EncodedQueries,
    Encoder,
    check_texts,
    l2_normalise,
    load_tokenizer,
    make_encoder,
    mean_pool,
    model_path,
)

# Cosine to fp32 measured on the texts below (2026-12-06), minus a margin for other CPUs and
# library versions. The floors sit above what the coarser schemes give, so a regression to
# them fails: torch int8 default 0.984 / min 0.937 (all-linear 0.931 / 0.860); ONNX int8
# default 0.991 / min 0.971 (per-tensor weights 0.951 / 0.900). The minimum is the empty text.
INT8_FLOOR = {"mean": 0.975, "min": 0.92}
ONNX_INT8_FLOOR = {"mean": 0.98, "min": 0.95}
WORDS = [1, 2, 4, 8, 16, 30, 60, 120, 200]


def _corpus_texts() -> list[str]:
    """~50 real texts: pydoc topic prefixes of 1..200 words, one over 256 tokens, one empty."""
    keys = sorted(topics)
    texts = [" ".join(topics[key].split()[: WORDS[i % len(WORDS)]]) for i, key in enumerate(keys)]
    longest = max(topics.values(), key=len)
    return [*texts[:47], " ".join(longest.split()[:700]), "", "   \n\t "]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _corpus_texts()


@pytest.fixture(scope="module")
def fp32():
    return make_encoder("fp32")


@pytest.fixture(scope="module")
def fp32_result(fp32, texts) -> EncodedQueries:
    return fp32.encode_queries(texts)


@pytest.fixture(scope="module")
def fp32_vectors(fp32_result) -> np.ndarray:
    return fp32_result.vectors


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_fp32(onnx_cache):
    return make_encoder("onnx-fp32", onnx_cache)


@pytest.fixture(scope="module")
def onnx_int8(onnx_fp32, onnx_cache):
    return make_encoder("onnx-int8", onnx_cache)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


# -- pooling and normalisation (no model) -------------------------------------------------------
def test_mean_pool_rejects_mismatched_shapes_and_non_binary_masks():
    """Shapes must agree on (batch, seq); the mask holds 0/1 only."""
    with pytest.raises(ValueError, match="disagree"):
        mean_pool(np.zeros((2, 3, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="expects"):
        mean_pool(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        mean_pool(np.zeros((1, 2, 4)), np.array([[1, 2]]))


def test_l2_normalise_gives_unit_rows_and_keeps_zero_rows_zero():
    """Unit length per row; an all-zero row stays zero instead of NaN."""
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["a", None], r"texts\[1\] is NoneType"),
        ([b"x"], r"texts\[0\] is bytes"),
        ("abc", "not a single str"),
    ],
)
def test_non_str_input_is_refused_naming_its_position(bad, message):
    """check_texts (used by every encoder) raises TypeError with the position."""
    with pytest.raises(TypeError, match=message):
        check_texts(bad)


def test_unknown_precision_and_schemes_are_refused_before_loading():
    """A typo fails at once with the valid names, not after a model load."""
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        make_encoder("fp16")
    with pytest.raises(ValueError, match="unknown int8_scheme"):
        make_encoder("int8", int8_scheme="half")
    with pytest.raises(ValueError, match="unknown onnx_int8_scheme"):
        make_encoder("onnx-int8", onnx_int8_scheme="half")


# -- fp32 against sentence-transformers ---------------------------------------------------------
@pytest.mark.slow
def test_fp32_equals_sentence_transformers(fp32, fp32_vectors, texts):
    """Same model folder, normalize_embeddings=True: equal within 1e-5, long text included."""
    from sentence_transformers import SentenceTransformer

    peer = SentenceTransformer(str(model_path()), device="cpu")
    assert peer.max_seq_length == MAX_TOKENS
    expected = peer.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert isinstance(fp32, Encoder)
    assert fp32_vectors.shape == (len(texts), DIM) and fp32_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fp32_vectors, axis=1), 1.0, atol=1e-6)
    assert np.abs(fp32_vectors - expected).max() < 1e-5


@pytest.mark.slow
def test_long_queries_are_truncated_and_said_so(fp32, fp32_result, fp32_vectors, texts):
    """Flags match an untruncated token count > 256; text past the cut changes nothing."""
    tokenizer = load_tokenizer()
    counts = [len(tokenizer(t, verbose=False)["input_ids"]) for t in texts]
    assert isinstance(fp32_result, EncodedQueries)
    assert fp32_result.truncated == [count > MAX_TOKENS for count in counts]
    assert fp32_result.truncated[47], "the 700-word text is over 256 tokens"
    # Truncation keeps the first 254 word pieces: appending text after them changes nothing.
    extended = fp32.encode_queries([texts[47] + " completely different trailing words"])
    assert extended.truncated == [True]
    np.testing.assert_allclose(extended.vectors[0], fp32_vectors[47], atol=1e-6)


@pytest.mark.slow
def test_empty_and_whitespace_texts_embed_to_one_fixed_unit_vector(fp32, fp32_vectors):
    """The empty string and whitespace embed as [CLS] [SEP]: one unit vector, every time."""
    again = fp32.encode(["", " ", "\n\t"])
    np.testing.assert_allclose(again, np.repeat(fp32_vectors[48:49], 3, axis=0), atol=1e-6)
    np.testing.assert_allclose(fp32_vectors[48], fp32_vectors[49], atol=1e-6)
    assert np.linalg.norm(again[0]) == pytest.approx(1.0, abs=1e-6)
    assert fp32.encode([]).shape == (0, DIM)


@pytest.mark.slow
def test_encoders_refuse_non_str_with_the_position(fp32):
    """TypeError through the public encode as well, before any tokenising."""
    with pytest.raises(TypeError, match=r"texts\[2\] is int"):
        fp32.encode(["a", "b", 3])
    with pytest.raises(TypeError, match="not a single str"):
        fp32.encode("a query")


@pytest.mark.slow
def test_length_batching_is_invisible_in_the_results(fp32, fp32_vectors, texts):
    """Tiny batches and one text at a time give the same rows, in input order."""
    small = fp32.encode(texts, batch_tokens=MAX_TOKENS)
    assert np.abs(small - fp32_vectors).max() < 1e-5
    picked = list(range(0, len(texts), 4)) + [47, 48]  # every length class, the long, the empty
    single = np.vstack([fp32.encode([texts[i]]) for i in picked])
    assert np.abs(single - fp32_vectors[picked]).max() < 1e-5
    with pytest.raises(ValueError, match="batch_tokens must be >= MAX_TOKENS"):
        fp32.encode(texts, batch_tokens=100)


# -- int8 and ONNX ---------------------------------------------------------------------------
@pytest.mark.slow
def test_int8_stays_close_to_fp32(fp32_vectors, texts):
    """torch dynamic int8 (default scheme): cosine to fp32 above the measured floors."""
    int8 = make_encoder("int8")
    assert int8.precision == "int8" and int8.variant == "keep-ffn-output"
    cos = _cosines(int8.encode(texts), fp32_vectors)
    assert cos.mean() > INT8_FLOOR["mean"] and cos.min() > INT8_FLOOR["min"], cos


@pytest.mark.slow
def test_onnx_fp32_matches_torch_fp32(onnx_fp32, fp32_vectors, texts):
    """The exported graph gives the fp32 vectors within 1e-4 (dynamic batch and length)."""
    assert onnx_fp32.artifact.created
    assert np.abs(onnx_fp32.encode(texts) - fp32_vectors).max() < 1e-4


@pytest.mark.slow
def test_onnx_int8_stays_close_to_fp32(onnx_int8, fp32_vectors, texts):
    """onnxruntime quantize_dynamic (default scheme): cosine to fp32 above the floors."""
    cos = _cosines(onnx_int8.encode(texts), fp32_vectors)
    assert onnx_int8.variant == "qint8-per-channel"
    assert cos.mean() > ONNX_INT8_FLOOR["mean"] and cos.min() > ONNX_INT8_FLOOR["min"], cos


@pytest.mark.slow
def test_a_second_make_encoder_reuses_the_export(onnx_fp32, onnx_int8, onnx_cache):
    """Both files are found intact and reused: not re-created, not rewritten."""
    paths = [onnx_fp32.artifact.path, onnx_int8.artifact.path]
    before = [os.stat(p).st_mtime_ns for p in paths]
    again_fp32 = make_encoder("onnx-fp32", onnx_cache)
    again_int8 = make_encoder("onnx-int8", onnx_cache)
    assert not again_fp32.artifact.created and not again_int8.artifact.created
    assert [again_fp32.artifact.path, again_int8.artifact.path] == paths
    assert [os.stat(p).st_mtime_ns for p in paths] == before


@pytest.mark.slow
def test_a_truncated_onnx_file_is_detected_and_rebuilt(onnx_fp32, onnx_cache, texts):
    """A cut model.onnx no longer matches its manifest: exported again, same vectors."""
    path = onnx_fp32.artifact.path
    sample = texts[:12]
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    rebuilt = make_encoder("onnx-fp32", onnx_cache)
    assert rebuilt.artifact.created and rebuilt.artifact.path == path
    manifest = json.loads(path.with_name(path.name + ".json").read_text())
    assert manifest["bytes"] == path.stat().st_size
    np.testing.assert_allclose(rebuilt.encode(sample), onnx_fp32.encode(sample), atol=1e-5)
