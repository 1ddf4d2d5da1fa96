"""A/B tests: stable hashed assignment, the z-test, Welch's test, sample size, SRM, the log."""

from __future__ import annotations

import hashlib
import math
import sqlite3

import numpy as np
import pytest
from scipy import stats

from rag_service.abtest import (
    Experiment,
    ExperimentLog,
    ExperimentLogCorrupt,
    assign_variant,
    compare_means,
    compare_proportions,
    sample_size_per_variant,
    srm_check,
)

Z_975 = 1.959963984540054  # the standard normal's 97.5th percentile
Z_80 = 0.8416212335729143  # its 80th percentile


def _oracle_bucket(user: str, experiment: str) -> float:
    digest = hashlib.sha256(f"{experiment}:{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# -- assignment --------------------------------------------------------------------------------
def test_assignment_is_the_documented_hash_and_never_changes():
    """sha256("exp:user") -> [0, 1) -> cumulative weights; pinned users keep their variant."""
    for i in range(200):
        user = f"user-{i}"
        expected = "control" if _oracle_bucket(user, "prompt-v2") < 0.5 else "treatment"
        assert assign_variant(user, "prompt-v2", ["control", "treatment"]) == expected
    assert assign_variant("alice", "prompt-v2", ["control", "treatment"]) == "control"
    assert assign_variant("bob", "prompt-v2", ["control", "treatment"]) == "treatment"
    assert assign_variant("bob", "prompt-v2", ["a", "b", "c"], [0.5, 0.3, 0.2]) == "c"


def test_weighted_split_over_20k_users_is_what_was_asked():
    """Chi-square goodness of fit over 20,000 users for weights 50/30/20 (scipy as oracle)."""
    weights = [0.5, 0.3, 0.2]
    names = ["a", "b", "c"]
    seen = [assign_variant(f"u{i}", "split", names, weights) for i in range(20_000)]
    counts = [seen.count(n) for n in names]
    assert stats.chisquare(counts, [20_000 * w for w in weights]).pvalue > 0.001
    assert counts[0] / 20_000 == pytest.approx(0.5, abs=0.015)


def test_experiments_are_independent():
    """A user's variant in one experiment says nothing about another (2x2 contingency test)."""
    users = [f"u{i}" for i in range(20_000)]
    first = [assign_variant(u, "exp-1", ["A", "B"]) == "B" for u in users]
    second = [assign_variant(u, "exp-2", ["A", "B"]) == "B" for u in users]
    table = np.zeros((2, 2))
    for x, y in zip(first, second, strict=True):
        table[int(x), int(y)] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001
    assert np.mean(np.array(first) == np.array(second)) == pytest.approx(0.5, abs=0.02)


def test_zero_weight_gets_nobody_and_ramping_up_keeps_users():
    """Weight 0 receives no one; raising B from 10 % to 50 % keeps everyone already in B."""
    users = [f"u{i}" for i in range(5_000)]
    assert all(assign_variant(u, "e", ["A", "B", "C"], [1, 0, 1]) != "B" for u in users)
    at_10 = {u for u in users if assign_variant(u, "ramp", ["B", "A"], [0.1, 0.9]) == "B"}
    at_50 = {u for u in users if assign_variant(u, "ramp", ["B", "A"], [0.5, 0.5]) == "B"}
    assert at_10 < at_50 and 400 < len(at_10) < 600


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variants": []}, "variants"),
        ({"variants": ["A", "A"]}, "distinct"),
        ({"variants": "AB"}, "variants"),
        ({"variants": ["A", "B"], "weights": [1]}, "weights"),
        ({"variants": ["A", "B"], "weights": [-1, 2]}, "weights"),
        ({"variants": ["A", "B"], "weights": [0, 0]}, "weights"),
    ],
)
def test_bad_assignment_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        assign_variant("u", "e", **kwargs)
    with pytest.raises(ValueError, match="user_id"):
        assign_variant("", "e", ["A"])


# -- proportions ---------------------------------------------------------------------------------
def test_z_test_by_hand():
    """20/200 vs 60/300: pooled rate 0.16 for p, unpooled standard error for the interval."""
    result = compare_proportions(20, 200, 60, 300)
    z = 0.1 / math.sqrt(0.16 * 0.84 * (1 / 200 + 1 / 300))
    assert result.difference == pytest.approx(0.1)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    assert result.p_value == pytest.approx(0.0028074, abs=1e-6)
    half = Z_975 * math.sqrt(0.1 * 0.9 / 200 + 0.2 * 0.8 / 300)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.1 - half, 0.1 + half), rel=1e-9)
    assert (result.rate_a, result.rate_b, result.n_a, result.n_b) == (0.1, 0.2, 200, 300)
    assert result.significant


def test_z_test_not_significant_and_degenerate():
    """100/1000 vs 120/1000 has p = 0.153; all-zero variants have p = 1 and no difference."""
    result = compare_proportions(100, 1000, 120, 1000)
    assert result.p_value == pytest.approx(0.152918, abs=1e-6)
    assert result.ci_low < 0 < result.ci_high and not result.significant
    zero = compare_proportions(0, 50, 0, 80)
    assert (zero.difference, zero.p_value, zero.ci_low, zero.ci_high) == (0.0, 1.0, 0.0, 0.0)


def test_bad_proportion_arguments():
    with pytest.raises(ValueError, match="n_a"):
        compare_proportions(0, 0, 1, 10)
    with pytest.raises(ValueError, match="exceed"):
        compare_proportions(11, 10, 1, 10)
    with pytest.raises(ValueError, match="confidence"):
        compare_proportions(1, 10, 1, 10, confidence=95)
    with pytest.raises(ValueError, match="successes_b"):
        compare_proportions(1, 10, 1.5, 10)


# -- means -----------------------------------------------------------------------------------------
def test_welch_by_hand_and_against_scipy():
    """a = 1..5, b = 2,3,4,5,9: se = sqrt(2.5/5 + 7.3/5) = 1.4, df = 1.96^2 / 0.5954."""
    a, b = [1, 2, 3, 4, 5], [2, 3, 4, 5, 9]
    result = compare_means(a, b)
    df = 1.96**2 / (0.5**2 / 4 + 1.46**2 / 4)
    assert result.difference == pytest.approx(1.6)
    assert result.p_value == pytest.approx(2 * stats.t.sf(1.6 / 1.4, df), rel=1e-9)
    assert result.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    half = stats.t.ppf(0.975, df) * 1.4
    assert (result.ci_low, result.ci_high) == pytest.approx((1.6 - half, 1.6 + half))
    flat = compare_means([2, 2, 2], [2, 2])
    assert (flat.p_value, flat.ci_low, flat.ci_high) == (1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="values_b"):
        compare_means([1, 2], [1])


# -- sample size -----------------------------------------------------------------------------------
def test_sample_size_textbook_numbers():
    """10 % -> 12 %: 3,841 per variant; 50 % -> 55 %: 1,565; the formula written out here."""

    def by_hand(p1, p2, z_a=Z_975, z_b=Z_80):
        pbar = (p1 + p2) / 2
        root = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(
            p1 * (1 - p1) + p2 * (1 - p2)
        )
        return math.ceil(root**2 / (p2 - p1) ** 2)

    assert sample_size_per_variant(0.10, 0.02) == by_hand(0.10, 0.12) == 3841
    assert sample_size_per_variant(0.5, 0.05) == by_hand(0.5, 0.55) == 1565
    assert sample_size_per_variant(0.12, -0.02) == 3841  # the formula is symmetric
    strict = by_hand(0.10, 0.12, 2.5758293035489004, 1.2815515655446004)
    assert sample_size_per_variant(0.10, 0.02, alpha=0.01, power=0.9) == strict
    assert sample_size_per_variant(0.10, 0.01) > 3.5 * 3841  # half the effect, ~4x the users
    for bad in ((0, 0.1), (0.5, 0), (0.95, 0.1)):
        with pytest.raises(ValueError):
            sample_size_per_variant(*bad)


# -- SRM -------------------------------------------------------------------------------------------
def test_srm_check():
    """10,000 vs 10,400 on a 50/50 split: chi2 = 7.84, p = 0.0051; weights by name or order."""
    assert srm_check({"A": 500, "B": 500}) == pytest.approx(1.0)
    stat = 2 * 200**2 / 10_200
    assert srm_check({"A": 10_000, "B": 10_400}) == pytest.approx(
        math.erfc(math.sqrt(stat / 2)), rel=1e-9
    )
    assert srm_check({"A": 900, "B": 100}, {"B": 1, "A": 9}) == pytest.approx(1.0)
    assert srm_check({"A": 900, "B": 100}, [0.9, 0.1]) == pytest.approx(1.0)
    assert srm_check({"A": 10, "B": 1}, [1, 0]) == 0.0
    with pytest.raises(ValueError, match="weights"):
        srm_check({"A": 1}, {"B": 1})
    with pytest.raises(ValueError, match="all 0"):
        srm_check({"A": 0, "B": 0})


# -- the log ---------------------------------------------------------------------------------------
def test_log_report_matches_the_functions(tmp_path):
    """Exposures and conversions logged, reopened, and reported as compare_proportions does."""
    exp = Experiment("prompt-v2", ("control", "concise"))
    rng = np.random.default_rng(3)
    exposed = {"control": 0, "concise": 0}
    converted = {"control": 0, "concise": 0}
    with ExperimentLog(tmp_path / "ab.sqlite") as log:
        for i in range(120):
            user = f"user-{i}"
            variant = log.expose(exp, user, ts=1000.0 + i)
            if i % 10 == 0:
                log.expose(exp, user, ts=2000.0 + i)  # a second visit: still one user
            exposed[variant] += 1
            if rng.random() < (0.4 if variant == "concise" else 0.2):
                converted[variant] += 1
                log.record(exp, user, "thumbs_up")
                if i % 5 == 0:
                    log.record(exp, user, "thumbs_up")  # twice: still one converted user
    with ExperimentLog(tmp_path / "ab.sqlite") as log:
        report = log.report(exp, "thumbs_up", minimum_detectable_effect=0.05)
    assert report["variants"]["control"]["n"] == exposed["control"]
    assert report["variants"]["concise"]["mean"] == pytest.approx(
        converted["concise"] / exposed["concise"]
    )
    expected = compare_proportions(
        converted["control"], exposed["control"], converted["concise"], exposed["concise"]
    )
    assert report["comparisons"]["concise"]["p_value"] == pytest.approx(expected.p_value)
    assert report["srm_p_value"] == pytest.approx(srm_check(exposed))
    baseline = converted["control"] / exposed["control"]
    needed = sample_size_per_variant(baseline, 0.05)
    assert report["sample_size_per_variant"] == needed
    assert report["still_needed_per_variant"] == max(0, needed - min(exposed.values()))


def test_log_report_of_means(tmp_path):
    """metric='mean': each user's mean value, Welch's test against the control."""
    exp = Experiment("latency", ("a", "b"))
    per_variant: dict[str, list[float]] = {"a": [], "b": []}
    with ExperimentLog(tmp_path / "ab.sqlite") as log:
        for i in range(24):
            user = f"u{i}"
            variant = log.expose(exp, user)
            log.record(exp, user, "latency_ms", 100.0 + i)
            log.record(exp, user, "latency_ms", 110.0 + i)
            per_variant[variant].append(105.0 + i)
        report = log.report(exp, "latency_ms", metric="mean")
    expected = compare_means(per_variant["a"], per_variant["b"])
    assert report["comparisons"]["b"]["difference"] == pytest.approx(expected.difference)
    assert report["variants"]["a"]["n"] == len(per_variant["a"])
    assert report["sample_size_per_variant"] is None


def test_log_refuses_damage_and_bad_names(tmp_path):
    """A non-SQLite file or a foreign table raises naming the file; reserved outcome names fail."""
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ExperimentLogCorrupt, match="garbage.sqlite"):
        ExperimentLog(garbage)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE events (id INTEGER)")
    conn.close()
    with pytest.raises(ExperimentLogCorrupt, match="foreign.sqlite"):
        ExperimentLog(foreign)
    exp = Experiment("e", ("a", "b"))
    with ExperimentLog(tmp_path / "ok.sqlite") as log:
        with pytest.raises(ValueError, match="outcome"):
            log.record(exp, "u", "_exposure")
        with pytest.raises(ValueError, match="value"):
            log.record(exp, "u", "clicks", float("nan"))
        assert log.report(exp, "clicks")["srm_p_value"] is None
    with pytest.raises(ValueError, match="weights"):
        Experiment("e", ("a", "b"), (1.0,))


def test_the_log_takes_writes_from_many_threads_at_once(tmp_path):
    """A threaded server exposes users from several workers on one connection."""
    from concurrent.futures import ThreadPoolExecutor

    experiment = Experiment("threads", ("a", "b"))
    with ExperimentLog(tmp_path / "log.sqlite") as log:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: log.expose(experiment, f"user-{i}"), range(200)))
        report = log.report(experiment, "clicked")
    assert sum(v["n"] for v in report["variants"].values()) == 200
