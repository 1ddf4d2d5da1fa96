"""A judged retrieval set in BEIR's shape: a corpus, queries and graded relevance judgements.

Every local set (the documentation questions, Lee's news ratings) and every BEIR folder a user
downloads becomes one of these, so the harness, the metrics and the benchmark never care where
the judgements came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CorpusEntry:
    """One retrievable document: BEIR's corpus.jsonl line without its id."""

    title: str
    text: str


@dataclass
class BeirDataset:
    """Corpus, queries and qrels (query id -> document id -> grade, 0 = judged not relevant).

    `problems` lists what a loader found wrong but could keep going past (qrels naming unknown
    ids, empty documents), so a caller can print them instead of trusting a silent drop.
    """

    name: str
    corpus: dict[str, CorpusEntry]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    problems: list[str] = field(default_factory=list)

    def judged_queries(self) -> list[str]:
        """Query ids with at least one relevant (grade > 0) document, in sorted order."""
        return sorted(q for q, docs in self.qrels.items() if any(g > 0 for g in docs.values()))

    def subset(self, query_ids: Mapping[str, object] | list[str], name: str | None = None):
        """The same corpus with only `query_ids` (a dev or test split)."""
        keep = set(query_ids)
        return BeirDataset(
            name=name or self.name,
            corpus=self.corpus,
            queries={q: t for q, t in self.queries.items() if q in keep},
            qrels={q: d for q, d in self.qrels.items() if q in keep},
            problems=list(self.problems),
        )
