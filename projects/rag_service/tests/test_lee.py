"""Lee's 50 news documents as a judged set: file layout, grades, the self-hit, broken files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag_service.datasets.lee import (
    CORPUS_FILE,
    RATINGS_FILE,
    LeeDataError,
    drop_self_hits,
    gensim_test_data,
    grade_distribution,
    lee_dataset,
    lee_ratings,
)

IDS = [f"lee-{i:02d}" for i in range(50)]


@pytest.fixture(scope="module")
def lee():
    return lee_dataset()


@pytest.fixture(scope="module")
def raw_upper_triangle() -> list[tuple[int, int, float]]:
    """The oracle: (i, j, value) for j > i, parsed here straight from the file's text."""
    rows = (gensim_test_data() / RATINGS_FILE).read_text().split("\n")
    rows = [row for row in rows if row.strip()]
    return [
        (i, j, float(cell))
        for i, row in enumerate(rows)
        for j, cell in enumerate(row.split("\t"))
        if j > i
    ]


def test_the_files_have_the_documented_layout(raw_upper_triangle):
    folder = gensim_test_data()
    assert (folder / CORPUS_FILE).read_bytes().count(b"\n") in (49, 50)  # 50 lines
    matrix = [row.split("\t") for row in (folder / RATINGS_FILE).read_text().split("\n") if row]
    assert len(matrix) == 50 and all(len(row) == 50 for row in matrix)
    assert all(float(matrix[i][i]) == 1 for i in range(50))
    assert all(float(matrix[i][j]) == 0 for i in range(50) for j in range(i))
    assert len(raw_upper_triangle) == 1225
    assert min(v for _, _, v in raw_upper_triangle) == pytest.approx(0.2)


def test_corpus_and_queries_are_the_fifty_documents(lee):
    assert lee.name == "lee" and lee.problems == []
    assert list(lee.corpus) == IDS and list(lee.queries) == IDS
    for qid in IDS:
        assert lee.queries[qid] == lee.corpus[qid].text and lee.corpus[qid].text.strip()
    # line order is kept: the first line opens with the Democrats story
    assert lee.corpus["lee-00"].text.startswith(
        "The national executive of the strife-torn Democrats"
    )
    # the one non-ASCII byte (0xA3 in ISO-8859-1) is a pound sign
    assert any("\u00a33,000" in entry.text for entry in lee.corpus.values())


def test_every_query_judges_the_other_49_and_never_itself(lee):
    for qid in IDS:
        judged = lee.qrels[qid]
        assert qid not in judged
        assert set(judged) == set(IDS) - {qid}
        assert set(judged.values()) <= {0, 1, 2}
        for other, value in judged.items():
            assert lee.qrels[other][qid] == value  # a pair's grade is symmetric


def test_rows_and_columns_match_the_document_lines(lee):
    """Pairs rated ~1.0 are the Democrats' leadership stories: rows index lee.cor's lines."""
    ratings = lee_ratings()
    assert ratings[(0, 32)] == pytest.approx(0.96) and ratings[(13, 32)] == pytest.approx(0.98)
    for i in (0, 13, 32):
        assert "Democrats" in lee.corpus[IDS[i]].text
    assert lee.qrels["lee-00"]["lee-32"] == lee.qrels["lee-32"]["lee-00"] == 2
    assert ratings[(17, 18)] == pytest.approx(0.68) and lee.qrels["lee-17"]["lee-18"] == 1
    assert ratings[(0, 1)] == pytest.approx(0.3) and lee.qrels["lee-00"]["lee-01"] == 0


def test_grade_distribution_matches_the_documented_cut_offs(lee, raw_upper_triangle):
    expected = {0: 0, 1: 0, 2: 0}
    for _, _, value in raw_upper_triangle:  # cut-offs restated: 0.70 and 0.46 of the 0-1 scale
        expected[2 if value >= 0.7 - 1e-6 else 1 if value >= 0.46 - 1e-6 else 0] += 1
    stats = grade_distribution(lee)
    assert stats["pairs_per_grade"] == expected == {0: 1040, 1: 139, 2: 46}
    assert stats["queries_with_grade_2"] == 35
    assert stats["relevant_per_query"]["min"] == 1
    assert stats["relevant_per_query"]["mean"] == pytest.approx(2 * (139 + 46) / 50)


def test_every_query_has_a_relevant_document(lee):
    assert lee.judged_queries() == IDS
    # the weakest query's best pair sits just above the grade-1 cut-off: one related document
    best_29 = max(v for (i, j), v in lee_ratings().items() if 29 in (i, j))
    assert best_29 == pytest.approx(0.46666666)
    assert {d: g for d, g in lee.qrels["lee-29"].items() if g > 0} == {"lee-30": 1}


def test_drop_self_hits_removes_only_the_query_document():
    run = {
        "lee-03": [("lee-03", 0.99), ("lee-09", 0.7), ("lee-10", 0.6)],
        "lee-04": [("lee-15", 0.5), ("lee-04", 0.98)],
        "lee-05": [("lee-14", 0.4)],
    }
    assert drop_self_hits(run) == {
        "lee-03": [("lee-09", 0.7), ("lee-10", 0.6)],
        "lee-04": [("lee-15", 0.5)],
        "lee-05": [("lee-14", 0.4)],
    }
    assert run["lee-03"][0] == ("lee-03", 0.99)  # the input is not modified


def _copy_files(tmp_path: Path) -> Path:
    for name in (CORPUS_FILE, RATINGS_FILE):
        shutil.copy(gensim_test_data() / name, tmp_path / name)
    return tmp_path


def test_a_missing_document_line_is_reported_with_the_file(tmp_path):
    folder = _copy_files(tmp_path)
    lines = (folder / CORPUS_FILE).read_bytes().split(b"\n")
    (folder / CORPUS_FILE).write_bytes(b"\n".join(lines[:49]))
    with pytest.raises(LeeDataError, match=r"lee\.cor: expected 50 documents \(lines\), found 49"):
        lee_dataset(folder)


def test_a_rating_below_the_diagonal_is_reported_with_line_and_column(tmp_path):
    folder = _copy_files(tmp_path)
    rows = (folder / RATINGS_FILE).read_text().split("\n")
    cells = rows[4].split("\t")
    cells[1] = "0.5"
    rows[4] = "\t".join(cells)
    (folder / RATINGS_FILE).write_text("\n".join(rows))
    with pytest.raises(LeeDataError, match=r"similarities0-1\.txt: line 5, column 2: 0\.5 below"):
        lee_dataset(folder)


def test_a_windows_1252_byte_is_refused_not_guessed(tmp_path):
    folder = _copy_files(tmp_path)
    data = (folder / CORPUS_FILE).read_bytes()
    (folder / CORPUS_FILE).write_bytes(data.replace(b"\xa3", b"\x80", 1))  # cp1252's euro sign
    with pytest.raises(LeeDataError, match=r"byte 0x80 at offset \d+"):
        lee_dataset(folder)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(LeeDataError, match="cannot read .*lee.cor"):
        lee_dataset(tmp_path)


def test_loading_does_not_import_gensim():
    """gensim takes seconds to import; its data files are found without importing it."""
    code = (
        "import sys; from rag_service.datasets.lee import lee_dataset; lee_dataset(); "
        "assert 'gensim' not in sys.modules, 'gensim was imported'"
    )
    src = Path(__file__).resolve().parents[1] / "src"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(src), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
