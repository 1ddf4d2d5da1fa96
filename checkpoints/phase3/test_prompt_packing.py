"""Checkpoint 3.7: packing retrieved passages into a prompt's token budget, with citations.

Grades `rag_service.prompting.pack_passages(passages, budget_tokens, count_tokens) -> Packed`:
passages are taken in rank order; each costs count_tokens("[id] text"); one that does not fit
the remaining budget is skipped (its id goes to `dropped`) and packing goes on; a repeated id is
ignored; nothing is ever cut. The token counter here counts words, so every cost below is a word
count written out by hand.
"""

from __future__ import annotations

import pytest

from learn.testing import import_learner


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture
def prompting():
    return import_learner("rag_service.prompting")


def passages(prompting, *specs):
    return [prompting.Passage(pid, text) for pid, text in specs]


@pytest.mark.checkpoint("3.7")
def test_everything_fits_in_rank_order(prompting):
    """Blocks of 3 and 4 words fit a budget of 7 exactly, in the order given."""
    given = passages(prompting, ("a", "one two"), ("b", "three four five"))
    packed = prompting.pack_passages(given, 7, words)
    assert [p.id for p in packed.included] == ["a", "b"]
    assert packed.dropped == [] and packed.tokens == 7


@pytest.mark.checkpoint("3.7")
def test_a_block_that_does_not_fit_is_skipped_not_cut(prompting):
    """a costs 3, b costs 6 (skipped with 5 left), c costs 2: a and c are kept, b is dropped."""
    given = passages(prompting, ("a", "one two"), ("b", "w1 w2 w3 w4 w5"), ("c", "last"))
    packed = prompting.pack_passages(given, 8, words)
    assert [p.id for p in packed.included] == ["a", "c"]
    assert packed.dropped == ["b"] and packed.tokens == 5
    assert packed.included[1].text == "last"  # the passage is kept whole


@pytest.mark.checkpoint("3.7")
def test_the_id_counts_against_the_budget(prompting):
    """ "[a] x y" is three words: a budget of 2 keeps nothing although the text is two words."""
    packed = prompting.pack_passages(passages(prompting, ("a", "x y")), 2, words)
    assert packed.included == [] and packed.dropped == ["a"] and packed.tokens == 0


@pytest.mark.checkpoint("3.7")
def test_a_repeated_id_is_ignored(prompting):
    """The same chunk from BM25 and from the dense index costs the budget once."""
    given = passages(prompting, ("a", "one"), ("b", "two"), ("a", "one"))
    packed = prompting.pack_passages(given, 10, words)
    assert [p.id for p in packed.included] == ["a", "b"]
    assert packed.dropped == [] and packed.tokens == 4


@pytest.mark.checkpoint("3.7")
def test_zero_budget_and_no_passages(prompting):
    """A zero budget keeps nothing and drops everything; no passages give an empty pack."""
    packed = prompting.pack_passages(passages(prompting, ("a", "x")), 0, words)
    assert packed.included == [] and packed.dropped == ["a"]
    empty = prompting.pack_passages([], 100, words)
    assert empty.included == [] and empty.dropped == [] and empty.tokens == 0


@pytest.mark.checkpoint("3.7")
def test_the_counter_sees_the_formatted_block(prompting):
    """count_tokens is called with "[id] text", the text the model will read."""
    seen = []

    def counting(text):
        seen.append(text)
        return 1

    prompting.pack_passages(passages(prompting, ("api:json#1f", " dumps ")), 5, counting)
    assert seen == ["[api:json#1f] dumps"]
