"""The corpora: CPython's topics and stdlib docstrings, and the workbook's markdown pages."""

from __future__ import annotations

import logging
import re
import shutil
import textwrap

import pytest

from rag_service.corpus.documents import (
    STDLIB_MODULES,
    Document,
    DocumentError,
    _signature,
    documentation_corpus,
    pydoc_topics,
    stdlib_docstrings,
    workbook_corpus,
)

TOPIC_ID = re.compile(r"^topic:[a-z][a-z-]*$")
API_ID = re.compile(r"^api:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return documentation_corpus()


def test_ids_are_unique_sorted_and_of_a_stable_form(corpus):
    ids = [d.id for d in corpus]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    bad = [i for i in ids if not (TOPIC_ID.match(i) or API_ID.match(i))]
    assert bad == []


def test_ids_are_names_not_positions(corpus):
    """The same documents come back with the same ids from a fresh build (no counters, no
    hashes of the run), and well-known names are where a user expects them."""
    again = [d.id for d in [*pydoc_topics(), *stdlib_docstrings()]]
    assert sorted(again) == [d.id for d in corpus]
    ids = {d.id for d in corpus}
    for expected in (
        "topic:assert",
        "topic:with",
        "api:json",
        "api:json.dumps",
        "api:collections.Counter",
        "api:collections.Counter.most_common",
        "api:os.path.join",  # under the name users import, not posixpath
        "api:heapq.heappush",  # a C accelerator function counts as its module's
        "api:pathlib.Path.read_text",
    ):
        assert expected in ids, expected


def test_corpus_size_is_in_the_expected_range(corpus):
    topics = [d for d in corpus if d.id.startswith("topic:")]
    api = [d for d in corpus if d.id.startswith("api:")]
    assert len(topics) + len(api) == len(corpus)
    # 79 topics and ~990 docstrings in 3.11 (989 on 3.11.2, 990 on 3.11.7): ranges, not exact
    # numbers, so a patch release does not break the test.
    assert 70 <= len(topics) <= 90
    assert 800 <= len(api) <= 1300
    # dataclasses, enum and pathlib have no module docstring in 3.11: skipped, not invented.
    modules = {
        d.id.removeprefix("api:") for d in api if d.id.removeprefix("api:") in STDLIB_MODULES
    }
    assert len(modules) >= len(STDLIB_MODULES) - 5
    assert "dataclasses" not in modules
    words = sum(len(d.text.split()) for d in corpus)
    assert 90_000 <= words <= 130_000


def test_documents_have_text_and_a_title_line(corpus):
    for doc in corpus:
        assert doc.text.strip(), doc.id
        assert doc.title.strip(), doc.id
        assert doc.text.startswith(doc.title), doc.id


def test_topic_title_is_the_first_line():
    by_id = {d.id: d for d in pydoc_topics()}
    assert by_id["topic:assert"].title == 'The "assert" statement'
    assert by_id["topic:typesmapping"].title.startswith("Mapping Types")


def test_api_title_carries_the_signature(corpus):
    by_id = {d.id: d for d in corpus}
    assert by_id["api:json.dumps"].title.startswith("json.dumps(obj, *, skipkeys=False")
    most_common = by_id["api:collections.Counter.most_common"]
    assert most_common.title == "collections.Counter.most_common(self, n=None)"
    assert "List the n most common elements" in most_common.text


def test_stdlib_modules_is_a_fixed_sorted_tuple():
    assert isinstance(STDLIB_MODULES, tuple)
    assert list(STDLIB_MODULES) == sorted(set(STDLIB_MODULES))
    assert 35 <= len(STDLIB_MODULES) <= 50


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    """A real importable module with documented, undocumented, imported and private names."""
    name = "rag_toy_module_for_documents"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            '''
            """Toy module docstring."""
            from json import dumps  # imported: not this module's API


            def documented(a, b=1):
                """Add things.

                    Indented detail is cleaned.
                """
                return a + b


            def undocumented():
                return None


            def blank():
                """   """


            def _private():
                """Private things are not API."""


            class Base:
                """A base class."""

                def run(self):
                    """Run it."""

                def _hidden(self):
                    """Hidden."""


            class Child(Base):
                def run(self):
                    return 1

                @classmethod
                def build(cls):
                    """Build one."""
                    return cls()
            '''
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    import sys

    sys.modules.pop(name, None)


def test_empty_docstrings_are_skipped_and_reported(toy_module):
    skipped: list[str] = []
    docs = {d.id: d for d in stdlib_docstrings([toy_module], skipped=skipped)}
    p = f"api:{toy_module}"
    assert sorted(docs) == sorted(
        [p, f"{p}.documented", f"{p}.Base", f"{p}.Base.run", f"{p}.Child.build"]
    )
    assert sorted(s.split(":")[1].split(" ")[0] for s in skipped) == sorted(
        [
            f"{toy_module}.undocumented",
            f"{toy_module}.blank",
            f"{toy_module}.Child",
            f"{toy_module}.Child.run",
        ]
    )
    assert all("empty docstring" in s for s in skipped)
    documented = docs[f"{p}.documented"]
    assert documented.title == f"{toy_module}.documented(a, b=1)"
    assert documented.text == f"{documented.title}\n\nAdd things.\n\nIndented detail is cleaned."
    assert documented.source == toy_module


def test_an_unknown_module_is_an_error_naming_it():
    with pytest.raises(DocumentError, match="no_such_module_xyz"):
        stdlib_docstrings(["no_such_module_xyz"])


def _write(path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_workbook_corpus_reads_book_pages_and_project_readmes(tmp_path):
    _write(tmp_path / "book" / "intro.md", b"# Welcome\n\nSome text.\n")
    _write(tmp_path / "book" / "phase1" / "trees.md", "Intro line\n\n# Trees — split\n".encode())
    _write(tmp_path / "book" / "_build" / "html" / "copy.md", b"# Build output\n")
    _write(tmp_path / "book" / "notes.txt", b"not markdown")
    _write(tmp_path / "projects" / "svc" / "README.md", b"# svc\n\nA service.\n")
    _write(tmp_path / "projects" / "svc" / "docs" / "other.md", b"# not a README\n")
    _write(tmp_path / "book" / "empty.md", b"  \n\n")
    skipped: list[str] = []
    docs = workbook_corpus(tmp_path, skipped=skipped)
    assert [d.id for d in docs] == [
        "book:book/intro.md",
        "book:book/phase1/trees.md",
        "book:projects/svc/README.md",
    ]
    assert [d.title for d in docs] == ["Welcome", "Trees — split", "svc"]
    assert skipped == ["book:book/empty.md: empty file"]


def test_workbook_corpus_refuses_a_file_that_is_not_utf8(tmp_path):
    _write(tmp_path / "book" / "good.md", b"# Good\n")
    bad = tmp_path / "book" / "latin1.md"
    _write(bad, b"# Caf\xe9 cr\xe8me\n")  # Latin-1: 0xe9 at offset 5
    with pytest.raises(DocumentError) as info:
        workbook_corpus(tmp_path)
    message = str(info.value)
    assert str(bad) in message
    assert "byte offset 5" in message


def test_workbook_corpus_needs_a_directory(tmp_path):
    with pytest.raises(DocumentError, match="not a directory"):
        workbook_corpus(tmp_path / "missing")


def test_signature_text_does_not_depend_on_what_the_process_did_before():
    """logging.shutdown's default lists every handler made so far; the text must not change."""
    before = _signature(logging.shutdown)
    handler = logging.StreamHandler()
    try:
        assert _signature(logging.shutdown) == before == "(handlerList=...)"
    finally:
        handler.close()
    assert _signature(shutil.copytree).count("copy_function=<function copy2>") == 1
