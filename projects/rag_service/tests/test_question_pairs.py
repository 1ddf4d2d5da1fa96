"""The semantic cache's calibration: the labelled question pairs, counting what a threshold
serves, and (slow) the whole measurement with MiniLM."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rag_service.caching.calibration import DEFAULT_SEMANTIC_THRESHOLD, evaluate_pairs
from rag_service.caching.semantic import choose_threshold
from rag_service.datasets.question_pairs import KINDS, PairFileError, load_question_pairs


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


# -- the pair file -----------------------------------------------------------------------------
def test_pair_file_loads_with_unique_ids_both_splits_and_every_kind():
    pairs = load_question_pairs()
    assert len(pairs) == 190
    assert len({p.id for p in pairs}) == len(pairs)
    assert Counter(p.kind for p in pairs) == {"paraphrase": 75, "lookalike": 75, "variant": 40}
    assert all(p.same is KINDS[p.kind] for p in pairs)
    for split in ("dev", "test"):
        chosen = load_question_pairs(split)
        assert {p.split for p in chosen} == {split}
        assert {p.kind for p in chosen} == set(KINDS)  # every kind in both splits
    assert len(load_question_pairs("dev")) + len(load_question_pairs("test")) == len(pairs)


def test_no_question_is_in_both_splits():
    questions = {
        split: {_normal(q) for p in load_question_pairs(split) for q in (p.cached, p.asked)}
        for split in ("dev", "test")
    }
    assert not questions["dev"] & questions["test"]


def _write(tmp_path, records):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _pair(pid="p1", cached="sort a list", asked="order a list", **fields):
    """A valid paraphrase record, with `fields` overriding same/kind/split."""
    record = {"id": pid, "cached": cached, "asked": asked, "same": True, "kind": "paraphrase"}
    return record | {"split": "dev"} | fields


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([_pair(same="yes")], "'same'"),
        ([_pair(kind="lookalike")], "must have 'same' False"),
        ([_pair(kind="synonym")], "'kind'"),
        ([_pair(split="train")], "'split'"),
        ([_pair(asked="Sort  a list")], "same question"),
        ([_pair(), _pair(cached="x", asked="y")], "duplicate id"),
        ([_pair(), _pair("p2", cached="order a list", asked="sort a list")], "same pair"),
        (
            [_pair(), _pair("p2", asked="sort a dict", same=False, kind="lookalike", split="test")],
            "is in split 'test' here but in 'dev'",
        ),
        ([{"id": "p1", "cached": "a", "asked": "b"}], "fields"),
    ],
)
def test_pair_file_errors_name_the_problem(tmp_path, records, match):
    with pytest.raises(PairFileError, match=match):
        load_question_pairs(path=_write(tmp_path, records))


def test_pair_split_argument_is_checked(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_question_pairs("validation")
    path = _write(tmp_path, [_pair()])
    assert [p.id for p in load_question_pairs("dev", path=path)] == ["p1"]
    assert load_question_pairs("test", path=path) == []


# -- evaluate_pairs ----------------------------------------------------------------------------
def test_evaluate_pairs_by_hand():
    """Threshold 0.8 serves 0.95 (right), 0.85 (wrong) and 0.8 (right: equal serves); 0.7 is
    a paraphrase missed and 0.5 a look-alike rightly missed."""
    sims = [0.95, 0.85, 0.8, 0.7, 0.5]
    same = [True, False, True, True, False]
    result = evaluate_pairs(0.8, sims, same)
    assert (result.pairs, result.servable, result.hits) == (5, 3, 3)
    assert (result.wrong_hits, result.right_hits) == (1, 2)
    assert result.hit_rate == pytest.approx(3 / 5)
    assert result.wrong_hit_rate == pytest.approx(1 / 3)
    assert result.servable_hit_rate == pytest.approx(2 / 3)
    nothing = evaluate_pairs(1.01, sims, same)
    assert nothing.hits == 0 and nothing.wrong_hit_rate == 0.0


def test_evaluate_pairs_agrees_with_choose_threshold_on_its_own_pairs():
    """On the pairs a threshold was chosen on, both count hits and wrong hits the same way."""
    sims = [0.99, 0.97, 0.93, 0.91, 0.9, 0.88, 0.8, 0.7, 0.6, 0.2]
    same = [True, True, True, False, True, True, False, True, False, True]
    for budget in (0.0, 0.1, 0.2, 0.3):
        chosen = choose_threshold(list(zip(sims, same, strict=True)), budget)
        result = evaluate_pairs(chosen.threshold, sims, same)
        assert result.hit_rate == pytest.approx(chosen.hit_rate)
        assert result.wrong_hit_rate == pytest.approx(chosen.wrong_hit_rate)


@pytest.mark.parametrize(
    ("threshold", "sims", "same", "match"),
    [
        (float("nan"), [0.5], [True], "threshold"),
        (True, [0.5], [True], "threshold"),
        (0.5, [], [], "similarities"),
        (0.5, [0.5, float("inf")], [True, True], "similarities"),
        (0.5, [0.5, 0.6], [True], "same"),
        (0.5, [0.5], [1], "same"),
    ],
)
def test_evaluate_pairs_rejects_bad_input(threshold, sims, same, match):
    with pytest.raises(ValueError, match=match):
        evaluate_pairs(threshold, sims, same)


# -- MiniLM on the shipped pairs ---------------------------------------------------------------
@pytest.mark.slow
def test_minilm_calibration_end_to_end():
    """The whole measurement with MiniLM fp32 (380 short questions): the dev threshold meets its
    budget on dev; the service default sits above every look-alike of both splits; a retyped
    question is served at the default and its look-alike is not."""
    from rag_service.caching.calibration import calibrate_semantic_cache, pair_similarities
    from rag_service.embeddings.encoder import make_encoder

    encoder = make_encoder("fp32")
    result = calibrate_semantic_cache(encoder, max_wrong_hit_rate=0.01)
    assert result.dev.wrong_hit_rate <= 0.01
    assert 0.8 < result.threshold < 0.95  # measured 0.896 on 2026-12-06
    assert (result.dev.pairs, result.test.pairs) == (96, 94)
    assert result.test_hit_rate_by_kind["variant"] > result.test_hit_rate_by_kind["lookalike"]
    highest_lookalike = max(
        result.similarity_quantiles[f"{split}_different"]["max"] for split in ("dev", "test")
    )
    assert highest_lookalike < DEFAULT_SEMANTIC_THRESHOLD
    retyped, lookalike = pair_similarities(
        encoder,
        ["check if a path is a directory", "check if a path is a directory"],
        ["how to check if path is a directory", "check if a path is a symbolic link"],
    )
    assert retyped >= DEFAULT_SEMANTIC_THRESHOLD > lookalike
