"""BM25Index over bm25s: scores against the Lucene formula, edge queries, persistence."""

from __future__ import annotations

import math

import pytest

from rag_service.index.base import IndexCorrupt
from rag_service.lexical import BM25Index

IDS = ["json", "csv", "pickle", "stop", "re"]
TEXTS = [
    "The json module encodes and decodes JSON documents; json.dumps returns a string.",
    "The csv module reads and writes CSV files, one row at a time.",
    "pickle serialises Python objects; never unpickle data from an untrusted source.",
    "the and of to is it",
    "Regular expressions: re.compile, re.match and re.search on a string.",
]


@pytest.fixture(scope="module")
def index() -> BM25Index:
    return BM25Index.build(IDS, TEXTS)


def _lucene_bm25(query_tokens, doc_tokens, corpus_tokens, k1=1.5, b=0.75) -> float:
    """Lucene's BM25 (Lucene >= 8 drops the constant (k1 + 1) factor; bm25s does too):
    idf = ln(1 + (N - df + .5) / (df + .5)), tf part = tf / (tf + k1 (1 - b + b dl / avgdl))."""
    n = len(corpus_tokens)
    average = sum(len(t) for t in corpus_tokens) / n
    score = 0.0
    for term in query_tokens:
        tf = doc_tokens.count(term)
        if tf == 0:
            continue
        df = sum(term in tokens for tokens in corpus_tokens)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        score += idf * tf / (tf + k1 * (1 - b + b * len(doc_tokens) / average))
    return score


def test_tokens_are_lowercase_words_without_stopwords(index):
    """Lower case, words of 2+ characters, English stop words removed."""
    assert index.tokenize("The JSON module: json.dumps() is a function!") == [
        "json", "module", "json", "dumps", "function",
    ]  # fmt: skip
    assert index.tokenize("the and of") == []


def test_scores_equal_the_lucene_formula(index):
    """Every returned score equals BM25 computed by hand (bm25s stores float32)."""
    corpus_tokens = [index.tokenize(t) for t in TEXTS]
    for query in ["json string", "module reads files", "re.search string"]:
        (results,) = index.search([query], k=10)
        assert results, query
        for doc_id, score in results:
            doc = corpus_tokens[IDS.index(doc_id)]
            expected = _lucene_bm25(index.tokenize(query), doc, corpus_tokens)
            assert score == pytest.approx(expected, rel=1e-5)


def test_best_document_first_and_shape(index):
    """One list per query, (id, score) pairs, best first."""
    results = index.search(["decode json documents", "untrusted pickle data"], k=2)
    assert [r[0][0] for r in results] == ["json", "pickle"]
    assert all(len(r) <= 2 for r in results)
    assert all(r[i][1] >= r[i + 1][1] for r in results for i in range(len(r) - 1))


def test_empty_stopword_and_unknown_queries_return_nothing(index):
    """No query term in the vocabulary: an empty result, not a crash and not zero-score filler."""
    assert index.search(["", "   ", "the and of it", "zzz qqq"], k=5) == [[], [], [], []]


def test_k_beyond_the_corpus_returns_every_matching_document(index):
    """k = 100 on 5 documents: exactly the documents sharing a term, all with score > 0."""
    (results,) = index.search(["string module"], k=100)
    assert {doc_id for doc_id, _ in results} == {"json", "csv", "re"}
    assert all(score > 0 for _, score in results)


def test_equal_scores_follow_insertion_order():
    """Identical documents score the same and come back in the order they were added."""
    index = BM25Index.build(["b", "a", "c"], ["same words here", "same words here", "other"])
    (results,) = index.search(["words"], k=5)
    assert [doc_id for doc_id, _ in results] == ["b", "a"]
    assert results[0][1] == results[1][1]


def test_save_and_load_give_identical_results(index, tmp_path):
    """A saved index answers exactly as before, and can be saved over (replaced) again."""
    queries = ["json string", "csv rows", "the", "regular expressions compile"]
    folder = index.save(tmp_path / "bm25")
    loaded = BM25Index.load(folder)
    assert loaded.ids == IDS and loaded.config() == index.config()
    assert loaded.search(queries, k=3) == index.search(queries, k=3)
    smaller = BM25Index.build(["x"], ["json only"])
    smaller.save(folder)
    # one document, tf = 1, dl = avgdl: idf ln(1 + .5 / 1.5) times tf part 1 / (1 + k1)
    expected = math.log(1 + 0.5 / 1.5) / (1 + 1.5)
    assert BM25Index.load(folder).search(["json"], k=3) == [[("x", pytest.approx(expected))]]


def test_damaged_files_raise_index_corrupt(index, tmp_path):
    """A truncated array or a missing manifest raises IndexCorrupt naming the file."""
    folder = index.save(tmp_path / "bm25")
    array = next(folder.joinpath("bm25s").glob("data*.npy"))
    array.write_bytes(array.read_bytes()[:-8])
    with pytest.raises(IndexCorrupt, match="data.csc.index.npy") as raised:
        BM25Index.load(folder)
    assert "rebuild" in str(raised.value).lower()
    (folder / "manifest.json").unlink()
    with pytest.raises(IndexCorrupt, match="manifest.json"):
        BM25Index.load(folder)


def test_save_refuses_to_replace_a_folder_that_is_not_an_index(index, tmp_path):
    """A non-empty folder without a manifest is never deleted by save."""
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        index.save(folder)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_add_and_delete_rebuild_the_statistics():
    """Adding documents changes IDF; deleting them restores the old scores exactly."""
    index = BM25Index.build(["a", "b"], ["python lists", "python tuples"])
    before = index.search(["lists"], k=5)
    index.add(["c", "d"], ["lists of lists", "more lists"])
    assert len(index) == 4
    assert index.search(["lists"], k=5)[0][0][0] == "c"
    assert index.delete(["c", "d", "unknown"]) == 2
    assert index.search(["lists"], k=5) == before


def test_bad_input_is_refused():
    """Repeated ids, mismatched lengths, one string instead of a list, k < 1."""
    index = BM25Index.build(["a"], ["some text"])
    with pytest.raises(ValueError, match="'a' is already"):
        index.add(["a"], ["again"])
    with pytest.raises(ValueError, match="1 ids but 2 texts"):
        index.add(["b"], ["x", "y"])
    with pytest.raises(TypeError, match="not one string"):
        index.search("some text", k=3)
    with pytest.raises(ValueError, match="k must be"):
        index.search(["text"], k=0)


def test_an_index_of_only_stopwords_answers_empty(tmp_path):
    """No document has a token: search is empty and the index still saves and loads."""
    index = BM25Index.build(["a"], ["the and of"])
    assert index.search(["the"], k=3) == [[]]
    assert BM25Index.load(index.save(tmp_path / "i")).search(["anything"], k=3) == [[]]


def test_stemmer_matches_word_forms():
    """With the English stemmer, 'parsing' finds a document that says 'parsed'."""
    plain = BM25Index.build(["d"], ["the file was parsed"])
    stemmed = BM25Index.build(["d"], ["the file was parsed"], stemmer="english")
    assert plain.search(["parsing"], k=1) == [[]]
    assert stemmed.search(["parsing"], k=1)[0][0][0] == "d"
