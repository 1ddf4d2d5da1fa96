"""Read and write BEIR folders: corpus.jsonl, queries.jsonl and qrels/<split>.tsv.

BEIR (https://github.com/beir-cellar/beir) is the common shape of public retrieval test sets, so
a user who downloads one (SciFact, FiQA, NFCorpus...) can score this service on it unchanged:
    corpus.jsonl   {"_id": "d1", "title": "...", "text": "..."} per line
    queries.jsonl  {"_id": "q1", "text": "..."} per line
    qrels/test.tsv query-id <TAB> corpus-id <TAB> score, with or without that header line
(four-column TREC qrels, `qid 0 docid grade`, are read too).

Judgements that name a query or document the folder does not have cannot be scored. They are
left out of the dataset but REPORTED in `dataset.problems` (or raised with `strict=True`): a silent
drop would change recall's denominator without anyone noticing. Queries in queries.jsonl without
judgements in the split are not part of that split and are not loaded (as in BEIR's loader).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from rag_service.evaluation.dataset import BeirDataset, CorpusEntry
from rag_service.fileio import replace_text

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
QRELS_FOLDER = "qrels"
QRELS_HEADER = ("query-id", "corpus-id", "score")
_SHOWN = 10  # ids quoted per problem; the count is always complete


class BeirError(ValueError):
    """A BEIR folder that cannot be read as one; the message names the file and line."""


def _require_file(path: Path, hint: str = "") -> Path:
    if not path.is_file():
        raise BeirError(f"{path}: file not found{hint}")
    return path


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; errors name the file and the line."""
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise BeirError(
                    f"{path}:{line_number}: not UTF-8 (byte {error.start} of the line)"
                ) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise BeirError(f"{path}:{line_number}: invalid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise BeirError(f"{path}:{line_number}: expected a JSON object")
            yield line_number, record


def _field(record: dict, name: str, path: Path, line: int, required: bool = True) -> str:
    value = record.get(name)
    if value is None and not required:
        return ""
    if name == "_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        state = "missing" if value is None else f"not a string ({type(value).__name__})"
        raise BeirError(f"{path}:{line}: field {name!r} is {state}")
    if name == "_id" and not value.strip():
        raise BeirError(f"{path}:{line}: field '_id' is empty")
    return value


def _read_corpus(path: Path, problems: list[str]) -> dict[str, CorpusEntry]:
    corpus: dict[str, CorpusEntry] = {}
    first_line: dict[str, int] = {}
    empty = []
    for line, record in _jsonl(path):
        doc_id = _field(record, "_id", path, line)
        if doc_id in corpus:
            raise BeirError(
                f"{path}:{line}: duplicate _id {doc_id!r} (first on line {first_line[doc_id]})"
            )
        entry = CorpusEntry(
            title=_field(record, "title", path, line, required=False),
            text=_field(record, "text", path, line),
        )
        if not entry.title.strip() and not entry.text.strip():
            empty.append(doc_id)
        corpus[doc_id] = entry
        first_line[doc_id] = line
    if empty:
        problems.append(
            f"{path.name}: {len(empty)} documents have no title or text: {_show(empty)}"
        )
    return corpus


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for line, record in _jsonl(path):
        query_id = _field(record, "_id", path, line)
        if query_id in queries:
            raise BeirError(f"{path}:{line}: duplicate _id {query_id!r}")
        queries[query_id] = _field(record, "text", path, line)
    return queries


def _read_qrels(path: Path, problems: list[str]) -> dict[str, dict[str, int]]:
    """query -> doc -> grade; the header line is optional, TREC's 4-column form is accepted."""
    qrels: dict[str, dict[str, int]] = {}
    repeated = []
    header_allowed = True
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise BeirError(
                    f"{path}:{line_number}: not UTF-8 (byte {error.start} of the line)"
                ) from None
            fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
            fields = [f.strip() for f in fields]
            if not any(fields):
                continue
            allow_header, header_allowed = header_allowed, False
            if len(fields) == 4:  # TREC: query-id iteration doc-id grade
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise BeirError(
                    f"{path}:{line_number}: expected 3 tab-separated columns "
                    f"(query-id, corpus-id, score), got {len(fields)}"
                )
            query_id, doc_id, grade_text = fields
            if not query_id or not doc_id:
                raise BeirError(f"{path}:{line_number}: empty query-id or corpus-id")
            try:
                grade = int(grade_text)
            except ValueError:
                if allow_header:  # the first non-blank line may be `query-id corpus-id score`
                    continue
                raise BeirError(
                    f"{path}:{line_number}: score {grade_text!r} is not an integer"
                ) from None
            judged = qrels.setdefault(query_id, {})
            if doc_id in judged:
                repeated.append(f"{query_id}/{doc_id}")
                continue  # the first judgement wins; reported below
            judged[doc_id] = grade
    if repeated:
        problems.append(
            f"{path.name}: {len(repeated)} repeated judgements (first kept): {_show(repeated)}"
        )
    return qrels


def _show(ids: list[str]) -> str:
    shown = ", ".join(ids[:_SHOWN])
    return shown + (f", ... ({len(ids) - _SHOWN} more)" if len(ids) > _SHOWN else "")


def load_beir(folder: Path | str, split: str = "test", strict: bool = False) -> BeirDataset:
    """Load one split of a BEIR folder.

    Judgements naming unknown query or corpus ids are dropped and described in `problems`; with
    `strict=True` they raise BeirError listing them instead. Queries whose judgements were all
    dropped are dropped too (reported). Raises BeirError for a missing folder or file (naming
    it, and the splits that exist), malformed JSON (file and line), or a non-integer score.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BeirError(
            f"{folder}: BEIR folder not found (expected {CORPUS_FILE}, "
            f"{QUERIES_FILE} and {QRELS_FOLDER}/<split>.tsv inside)"
        )
    qrels_path = folder / QRELS_FOLDER / f"{split}.tsv"
    if not qrels_path.is_file():
        splits = sorted(p.stem for p in (folder / QRELS_FOLDER).glob("*.tsv"))
        available = ", ".join(splits) if splits else "none"
        raise BeirError(f"{qrels_path}: file not found (splits in {folder}: {available})")
    problems: list[str] = []
    corpus = _read_corpus(_require_file(folder / CORPUS_FILE), problems)
    all_queries = _read_queries(_require_file(folder / QUERIES_FILE))
    raw_qrels = _read_qrels(qrels_path, problems)

    unknown_queries = sorted(q for q in raw_qrels if q not in all_queries)
    unknown_docs = sorted(
        {
            d
            for q, judged in raw_qrels.items()
            if q in all_queries
            for d in judged
            if d not in corpus
        }
    )
    found = []
    if unknown_queries:
        found.append(
            f"{qrels_path.name}: {len(unknown_queries)} query ids not in {QUERIES_FILE}: "
            f"{_show(unknown_queries)}"
        )
    if unknown_docs:
        found.append(
            f"{qrels_path.name}: {len(unknown_docs)} corpus ids not in {CORPUS_FILE}: "
            f"{_show(unknown_docs)}"
        )
    if found and strict:
        raise BeirError(f"{folder}: " + "; ".join(found))
    problems.extend(found)

    qrels: dict[str, dict[str, int]] = {}
    emptied = []
    for query_id, judged in raw_qrels.items():
        if query_id not in all_queries:
            continue
        kept = {d: g for d, g in judged.items() if d in corpus}
        if kept:
            qrels[query_id] = kept
        else:
            emptied.append(query_id)
    if emptied:
        problems.append(
            f"{qrels_path.name}: {len(emptied)} queries lost every judgement and were dropped: "
            f"{_show(sorted(emptied))}"
        )
    queries = {q: all_queries[q] for q in all_queries if q in qrels}
    return BeirDataset(
        name=folder.name, corpus=corpus, queries=queries, qrels=qrels, problems=problems
    )


def write_beir(dataset: BeirDataset, folder: Path | str, split: str = "test") -> Path:
    """Write `dataset` as a BEIR folder (each file atomically) and return the folder.

    Queries without judgements are written to queries.jsonl but, as BEIR intends, do not load
    back as part of `split`. Ids with tabs or line breaks are refused (they would break the TSV).
    """
    folder = Path(folder)
    if not split or "/" in split or split.startswith("."):
        raise ValueError(f"split must be a plain file stem, got {split!r}")
    for query_id, judged in dataset.qrels.items():
        for identifier in (query_id, *judged):
            if any(c in identifier for c in "\t\r\n") or not identifier.strip():
                raise ValueError(f"id {identifier!r} cannot be written to a qrels TSV")
    corpus_lines = [
        json.dumps({"_id": doc_id, "title": entry.title, "text": entry.text}, ensure_ascii=False)
        for doc_id, entry in dataset.corpus.items()
    ]
    query_lines = [
        json.dumps({"_id": query_id, "text": text}, ensure_ascii=False)
        for query_id, text in dataset.queries.items()
    ]
    qrels_lines = ["\t".join(QRELS_HEADER)] + [
        f"{query_id}\t{doc_id}\t{grade}"
        for query_id, judged in dataset.qrels.items()
        for doc_id, grade in judged.items()
    ]
    replace_text(folder / CORPUS_FILE, "".join(line + "\n" for line in corpus_lines))
    replace_text(folder / QUERIES_FILE, "".join(line + "\n" for line in query_lines))
    replace_text(
        folder / QRELS_FOLDER / f"{split}.tsv", "".join(line + "\n" for line in qrels_lines)
    )
    return folder
