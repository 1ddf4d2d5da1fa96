"""Lee's news corpus as a judged retrieval set: every document is a query over the other 49.

Lee, Pincombe and Welsh (2005) had 83 students rate the similarity of every pair of 50 short
Australian news articles (ABC, 2002) on a scale from 1 (highly unrelated) to 5 (highly related),
about ten ratings per pair. gensim ships both files in its test data:

* `lee.cor`: the 50 documents, one per line, in ISO-8859-1 (the file holds a `£` as byte 0xA3;
  gensim's own tutorials read it with `encoding="iso-8859-1"`). Line i (from 0) is `lee-<ii>`.
* `similarities0-1.txt`: a 50 x 50 tab-separated matrix. Row i, column j is the mean rating of
  documents i and j divided by 5 (so 0.2 = every rater said "highly unrelated", 1.0 = every
  rater said "highly related"; denominators of 45, 50 and 55 show 9-11 raters). Only the upper
  triangle holds ratings: the diagonal is 1 and everything below it is 0. So the pair (i, j) with
  i < j is at row i, column j; the 1,225 pairs read row by row give (0,1), (0,2), ..., (48,49).

Graded relevance from the mean rating, cut-offs read off the 1,225 ratings (median 0.28, 85th
percentile 0.46, 95th 0.64; histogram in the book):

* grade 2, same topic: value >= 0.70 (mean rating >= 3.5: most raters said related or highly
  related), 46 pairs (3.8 %);
* grade 1, related: 0.46 <= value < 0.70 (mean rating >= 2.3, the top 15 % of pairs: raters
  leaned away from "unrelated"), 139 pairs (11.3 %);
* grade 0: the other 1,040 pairs, kept in the qrels as judged-not-relevant (every pair was
  judged).

With these cut-offs every query has at least one relevant document (the least related query,
`lee-29`, has its best pair at 0.467; a grade-1 cut-off above that would leave queries without
any) and 35 of the 50 queries have a grade-2 document. Relevant documents per query: 1 to 18,
mean 7.4.

The self-hit: a query's own document is in the corpus, and any retriever ranks it first. It is
never judged (a document is not relevant to itself by construction here), so left in the run it
would count as a non-relevant rank-1 hit. Query ids equal the document ids they were made from
(`lee-07` is both), so the evaluation drops the self-hit with `drop_self_hits(run)`, which keeps
every entry whose document id differs from its query id. Retrieve k + 1 documents per query and
drop the self-hit to score at k.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from rag_service.evaluation.dataset import BeirDataset, CorpusEntry

__all__ = [
    "CORPUS_FILE",
    "N_DOCUMENTS",
    "RATINGS_FILE",
    "RELATED",
    "SAME_TOPIC",
    "LeeDataError",
    "doc_id",
    "drop_self_hits",
    "gensim_test_data",
    "grade",
    "grade_distribution",
    "lee_dataset",
    "lee_ratings",
    "read_lee_documents",
]

CORPUS_FILE = "lee.cor"
RATINGS_FILE = "similarities0-1.txt"
N_DOCUMENTS = 50
SAME_TOPIC = 0.70
"""Grade 2 from this mean rating / 5 on (mean rating 3.5 of 5)."""
RELATED = 0.46
"""Grade 1 from this mean rating / 5 on (mean rating 2.3 of 5, the 85th percentile of pairs)."""
_TOLERANCE = 1e-6  # the file prints float32 values; 0.46 must not become 0.45999998 < 0.46


class LeeDataError(ValueError):
    """A Lee data file is missing or not in the shape described in the module docstring."""


def gensim_test_data() -> Path:
    """gensim's test-data folder, found without importing gensim (its import takes seconds and
    pulls in scipy; `gensim.test.utils.datapath(name)` is this folder joined with `name`)."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise LeeDataError(
            "gensim is not installed: Lee's corpus and ratings ship in its test data "
            "(pip install gensim)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"


def doc_id(index: int) -> str:
    """`lee-07` for the document on line 7 (from 0) of lee.cor."""
    return f"lee-{index:02d}"


def _read(folder: Path, name: str) -> bytes:
    path = folder / name
    try:
        return path.read_bytes()
    except OSError as error:
        raise LeeDataError(f"cannot read {path}: {error.strerror or error}") from error


def read_lee_documents(folder: Path | None = None) -> list[str]:
    """The 50 documents of lee.cor in file order, decoded as ISO-8859-1, surrounding whitespace
    stripped. C1 control bytes (0x80-0x9F) are refused: they would mean the file is really
    Windows-1252 and decoding it as Latin-1 would silently corrupt characters."""
    folder = folder or gensim_test_data()
    path = folder / CORPUS_FILE
    raw = _read(folder, CORPUS_FILE)
    for offset, byte in enumerate(raw):
        if 0x80 <= byte <= 0x9F:
            raise LeeDataError(
                f"{path}: byte 0x{byte:02X} at offset {offset} is a C1 control character in "
                "ISO-8859-1; the file is not in the expected encoding"
            )
    lines = raw.decode("iso-8859-1").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it does not start a 51st document
    if len(lines) != N_DOCUMENTS:
        raise LeeDataError(f"{path}: expected {N_DOCUMENTS} documents (lines), found {len(lines)}")
    documents = [line.strip() for line in lines]
    for number, text in enumerate(documents, start=1):
        if not text:
            raise LeeDataError(f"{path}: line {number} is empty; every line is a document")
    return documents


def lee_ratings(folder: Path | None = None) -> dict[tuple[int, int], float]:
    """The 1,225 pair ratings (mean rating / 5) keyed by (i, j) with i < j, document indices from
    0, read from the upper triangle of similarities0-1.txt after checking its shape: 50 rows of
    50 numbers, 1 on the diagonal, 0 below it, values in [0.2, 1] above it."""
    folder = folder or gensim_test_data()
    path = folder / RATINGS_FILE
    try:
        text = _read(folder, RATINGS_FILE).decode("ascii")
    except UnicodeDecodeError as error:
        raise LeeDataError(f"{path}: non-ASCII byte at offset {error.start}") from None
    rows = text.strip("\n").split("\n")
    if len(rows) != N_DOCUMENTS:
        raise LeeDataError(f"{path}: expected {N_DOCUMENTS} rows, found {len(rows)}")
    ratings: dict[tuple[int, int], float] = {}
    for i, row in enumerate(rows):
        cells = row.rstrip("\r").split("\t")
        if len(cells) != N_DOCUMENTS:
            raise LeeDataError(
                f"{path}: line {i + 1} has {len(cells)} tab-separated values, "
                f"expected {N_DOCUMENTS}"
            )
        for j, cell in enumerate(cells):
            try:
                value = float(cell)
            except ValueError:
                raise LeeDataError(
                    f"{path}: line {i + 1}, column {j + 1}: {cell!r} is not a number"
                ) from None
            where = f"{path}: line {i + 1}, column {j + 1}"
            if j < i and value != 0:
                raise LeeDataError(f"{where}: {value} below the diagonal, expected 0")
            if j == i and value != 1:
                raise LeeDataError(f"{where}: {value} on the diagonal, expected 1")
            if j > i:
                if not 0.2 - _TOLERANCE <= value <= 1 + _TOLERANCE:
                    raise LeeDataError(f"{where}: rating {value} outside [0.2, 1]")
                ratings[(i, j)] = value
    return ratings


def grade(rating: float) -> int:
    """Graded relevance of a pair from its mean rating / 5: 2 same topic, 1 related, 0 not."""
    if rating >= SAME_TOPIC - _TOLERANCE:
        return 2
    if rating >= RELATED - _TOLERANCE:
        return 1
    return 0


def lee_dataset(folder: Path | None = None) -> BeirDataset:
    """Lee's 50 documents as corpus and as queries, qrels graded from the pair ratings.

    `folder` defaults to gensim's test data; tests pass a folder with their own files. Each
    query is judged against the 49 other documents (grade 0 included) and never against itself:
    apply `drop_self_hits` to a run before scoring it.
    """
    documents = read_lee_documents(folder)
    ratings = lee_ratings(folder)
    ids = [doc_id(i) for i in range(N_DOCUMENTS)]
    qrels: dict[str, dict[str, int]] = {qid: {} for qid in ids}
    for (i, j), rating in ratings.items():
        qrels[ids[i]][ids[j]] = qrels[ids[j]][ids[i]] = grade(rating)
    qrels = {qid: dict(sorted(judged.items())) for qid, judged in qrels.items()}
    return BeirDataset(
        name="lee",
        corpus={
            qid: CorpusEntry(title="", text=text) for qid, text in zip(ids, documents, strict=True)
        },
        queries=dict(zip(ids, documents, strict=True)),
        qrels=qrels,
        problems=[],
    )


def grade_distribution(dataset: BeirDataset) -> dict[str, object]:
    """Pairs per grade (each unordered pair once) and relevant documents per query: the numbers
    the cut-offs were chosen by, for the book's table."""
    pairs: Counter[int] = Counter()
    for qid, judged in dataset.qrels.items():
        for did, value in judged.items():
            if qid < did:
                pairs[value] += 1
    relevant = [sum(g > 0 for g in judged.values()) for judged in dataset.qrels.values()]
    return {
        "pairs_per_grade": {g: pairs.get(g, 0) for g in (0, 1, 2)},
        "relevant_per_query": {
            "min": min(relevant, default=0),
            "max": max(relevant, default=0),
            "mean": sum(relevant) / len(relevant) if relevant else 0.0,
        },
        "queries_with_grade_2": sum(
            any(g == 2 for g in judged.values()) for judged in dataset.qrels.values()
        ),
    }


def drop_self_hits(
    run: Mapping[str, Sequence[tuple[str, float]]],
) -> dict[str, list[tuple[str, float]]]:
    """The run without each query's own document (the entry whose doc id equals the query id).

    On Lee's set a query is a corpus document, so every retriever finds it first; it is not
    judged, and leaving it in would put a non-relevant hit at rank 1 of every query. Order and
    scores of the remaining entries are kept; a run shorter by one is expected (retrieve k + 1).
    """
    return {
        qid: [(did, score) for did, score in ranking if did != qid] for qid, ranking in run.items()
    }
