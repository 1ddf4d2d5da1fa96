"""Evidently reports: self-contained HTML, and its verdicts read back equal to its stat tests."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest
from training_fixtures import build_training_set

from mlops_pipeline.monitoring import reports
from mlops_pipeline.monitoring.drift import MONITORED_CATEGORICAL, MONITORED_NUMERIC

pytestmark = [
    pytest.mark.slow,  # importing Evidently takes 5-12 s
    # Evidently's dependencies (litestar, its legacy modules) warn about their own deprecations
    # while it is imported: nothing this package can act on.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


class _Resources(HTMLParser):
    """Every URL the page would LOAD: src of any tag, href of <link>, <object data>, and
    url(...) in inline styles. Links a reader may click (<a href>) load nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == "src" or (tag == "link" and name == "href") or name == "data"):
                self.urls.append(value)
            if value and name == "style" and "url(" in value:
                self.urls.append(value)


@pytest.fixture(scope="module")
def windows():
    """Two real fortnights a month apart (more than 1,000 rows each: Evidently's large-sample
    tests), with a score column."""
    rng = np.random.default_rng(0)
    ref = build_training_set("2013-03-04", "2013-03-18")
    cur = build_training_set("2013-05-06", "2013-05-20")
    ref["delay_probability"] = rng.uniform(0, 0.5, len(ref))
    cur["delay_probability"] = rng.uniform(0, 0.5, len(cur))
    return ref, cur


@pytest.fixture(scope="module")
def written(windows, tmp_path_factory):
    ref, cur = windows
    path = tmp_path_factory.mktemp("reports") / "2013-05.html"
    numeric = [*MONITORED_NUMERIC, "delay_probability"]
    return path, reports.write_report(ref, cur, path, numeric, MONITORED_CATEGORICAL, title="t")


def test_report_is_self_contained_html(written):
    """The page exists, holds the drift table, and loads nothing from any host."""
    path, outcome = written
    assert outcome.report == path and path.stat().st_size > 500_000
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html") or "<html" in text[:500]
    parser = _Resources()
    parser.feed(text)
    external = [u for u in parser.urls if u.startswith(("http:", "https:", "//"))]
    assert not external, external[:5]
    assert "<script" in text and "temp" in text


def test_report_verdicts_equal_evidently_stat_tests(written, windows):
    """Verdicts read from the report's .dict() equal the registry's stat tests without a report:
    same method, score and drifted flag for every column; temperature drifts March -> May."""
    _, from_report = written
    ref, cur = windows
    numeric = [*MONITORED_NUMERIC, "delay_probability"]
    direct = reports.column_verdicts(ref, cur, numeric, MONITORED_CATEGORICAL)
    a = from_report.columns.set_index("column").sort_index()
    b = direct.columns.set_index("column").sort_index()
    assert list(a.index) == sorted([*numeric, *MONITORED_CATEGORICAL])
    assert (a["method"] == b["method"]).all()
    assert np.allclose(a["score"], b["score"], rtol=1e-9, atol=1e-12)
    assert (a["drifted"] == b["drifted"]).all()
    assert from_report.drifted_share == pytest.approx(direct.drifted_share)
    assert a.loc["temp", "drifted"] and a.loc["temp", "method"].startswith("Wasserstein")
    assert a.loc["engines", "method"].startswith("Jensen-Shannon")  # <= 5 distinct values


def test_verdicts_from_a_result_without_drift_metrics_are_an_error():
    """A result without ValueDrift metrics (no DataDriftPreset) is refused, not read as 'none'."""
    with pytest.raises(ValueError, match="ValueDrift"):
        reports.verdicts_from_snapshot({"metrics": [], "tests": []})
