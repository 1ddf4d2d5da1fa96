"""Checkpoint 2.9: a multi-window, multi-burn-rate SLO alert as a Prometheus alerting rule.

Grades `mlops_pipeline.observability.rules.burn_rate_alert(name, slo, long_window,
short_window, factor, severity, *, annotations, sli, for_) -> dict`. The rules it returns are
loaded next to the package's recording rules into the real `promtool` (Prometheus 2.42):
`promtool check rules` must accept them and `promtool test rules` must see them fire and stay
quiet on request series written out here, whose error ratios are known by construction (100
requests a minute). Nothing is compared with the reference implementation's text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from learn.testing import import_learner

SLI = "mlops:predict_requests:error_ratio"
ANNOTATIONS = {
    "summary": "error budget burning",
    "description": "5xx answers above the burn-rate threshold over both windows",
    "runbook_url": "https://example.org/runbooks/Burn.md",
}
#: name -> (long window, short window, factor, severity): the Google SRE workbook's three rows.
POLICY = {
    "FastBurn": ("1h", "5m", 14.4, "page"),
    "MediumBurn": ("6h", "30m", 6.0, "page"),
    "SlowBurn": ("3d", "6h", 1.0, "ticket"),
}


@pytest.fixture
def rules():
    return import_learner("mlops_pipeline.observability.rules")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's prometheus package (make system-deps)")
    return path


def _alerts(rules) -> list[dict]:
    """The learner's three rules of a 99.5 % availability SLO, one name per policy row."""
    return [
        rules.burn_rate_alert(
            name, 0.995, long, short, factor, severity, annotations=ANNOTATIONS, sli=SLI
        )
        for name, (long, short, factor, severity) in POLICY.items()
    ]


def _rule_files(rules, folder: Path) -> list[Path]:
    recording = folder / "recording.yml"
    recording.write_text(yaml.safe_dump(rules.recording_rules(), sort_keys=False))
    alerts = folder / "alerts.yml"
    alerts.write_text(
        yaml.safe_dump({"groups": [{"name": "burn", "rules": _alerts(rules)}]}, sort_keys=False)
    )
    return [recording, alerts]


def _counter(*segments: tuple[int, int]) -> str:
    """promtool values of a counter from 0: (increase per minute, minutes) segments in turn."""
    parts, value = ["0"], 0
    for increase, minutes in segments:
        parts.append(f"{value + increase}+{increase}x{minutes - 1}")
        value += increase * minutes
    return " ".join(parts)


def _traffic(*segments: tuple[float, int]) -> list[dict]:
    """Series of 100 POST /v1/predict requests a minute: (share of 5xx, minutes) segments."""
    ok = [(round(100 * (1 - share)), minutes) for share, minutes in segments]
    bad = [(round(100 * share), minutes) for share, minutes in segments]
    labels = 'route="/v1/predict",method="POST",role="stable",instance="stable-0"'
    return [
        {"series": f'mlops_http_requests_total{{{labels},status="200"}}', "values": _counter(*ok)},
        {"series": f'mlops_http_requests_total{{{labels},status="500"}}', "values": _counter(*bad)},
    ]


def _run_scenario(rules, tmp_path: Path, series: list[dict], firing: dict[str, list[str]]):
    """promtool test rules: at each eval time, exactly the named alerts are firing."""
    files = _rule_files(rules, tmp_path)
    by_name = {rule["alert"]: rule for rule in _alerts(rules)}
    checks = []
    for at, names in firing.items():
        for name in POLICY:
            rule = by_name[name]
            expected = [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]
            checks.append(
                {
                    "eval_time": at,
                    "alertname": name,
                    "exp_alerts": expected if name in names else [],
                }
            )
    test = {
        "rule_files": [str(f) for f in files],
        "evaluation_interval": "1m",
        "group_eval_order": [g["name"] for g in rules.recording_rules()["groups"]] + ["burn"],
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    path = tmp_path / "burn_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(
        [_promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _thresholds(expr: str) -> list[float]:
    return [float(x) for x in re.findall(r">=?\s*([0-9][0-9.eE+-]*)", expr)]


@pytest.mark.checkpoint("2.9")
def test_returns_a_prometheus_alerting_rule(rules):
    """A dict with alert, expr, for, labels.severity and the annotations given."""
    rule = rules.burn_rate_alert(
        "FastBurn", 0.995, "1h", "5m", 14.4, "page", annotations=ANNOTATIONS, sli=SLI, for_="3m"
    )
    assert rule["alert"] == "FastBurn"
    assert rule["for"] == "3m"
    assert rule["labels"]["severity"] == "page"
    assert rule["annotations"] == ANNOTATIONS
    assert isinstance(rule["expr"], str)


@pytest.mark.checkpoint("2.9")
def test_expr_compares_both_recorded_windows(rules):
    """The expression reads the recorded ratio over the long AND the short window."""
    for name, (long, short, factor, severity) in POLICY.items():
        expr = rules.burn_rate_alert(
            name, 0.995, long, short, factor, severity, annotations=ANNOTATIONS, sli=SLI
        )["expr"]
        assert re.search(rf"{re.escape(SLI)}_rate{long}\b", expr), expr
        assert re.search(rf"{re.escape(SLI)}_rate{short}\b", expr), expr
        assert re.search(r"\band\b", expr), f"both windows must hold at once: {expr}"


@pytest.mark.checkpoint("2.9")
def test_threshold_is_the_burn_rate_times_the_error_budget(rules):
    """Both windows compare with factor * (1 - slo): 14.4 x 0.5 % = 7.2 %, 6 x 1 % = 6 %."""
    cases = [
        (0.995, "1h", "5m", 14.4, 0.072),
        (0.995, "6h", "30m", 6.0, 0.03),
        (0.99, "6h", "30m", 6.0, 0.06),
        (0.999, "3d", "6h", 1.0, 0.001),
    ]
    for slo, long, short, factor, expected in cases:
        expr = rules.burn_rate_alert(
            "Burn", slo, long, short, factor, "page", annotations=ANNOTATIONS, sli=SLI
        )["expr"]
        found = _thresholds(expr)
        assert len(found) == 2, f"expected one threshold per window in {expr!r}"
        assert found == [pytest.approx(expected, rel=1e-6)] * 2, (slo, factor, expr)


@pytest.mark.checkpoint("2.9")
def test_promtool_accepts_the_rules(rules, tmp_path):
    """`promtool check rules` loads the learner's rules next to the recording rules."""
    files = _rule_files(rules, tmp_path)
    result = subprocess.run(
        [_promtool(), "check", "rules", *map(str, files)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.checkpoint("2.9")
def test_sustained_errors_page_within_the_hour(rules, tmp_path):
    """10 % errors after an hour of clean traffic: the 1h ratio passes 7.2 % after 44 minutes,
    so the fast page is quiet at 40 minutes and firing at 50 and 60 (with one hour of history
    the 6h and 3d windows hold under two hours: their alerts fire too)."""
    series = _traffic((0, 60), (0.10, 60))
    every = ["FastBurn", "MediumBurn", "SlowBurn"]
    _run_scenario(
        rules,
        tmp_path,
        series,
        {"1h40m": ["MediumBurn", "SlowBurn"], "1h50m": every, "2h": every},
    )


@pytest.mark.checkpoint("2.9")
def test_a_short_spike_does_not_page(rules, tmp_path):
    """Three minutes of 100 % errors after 2 h clean: the 5m and 30m windows see 60 % and 10 %,
    the 1h and 6h windows 5 % and 2.4 %, so neither page fires (2 h of history make the 3-day
    window 2 h long: the 1x ticket does)."""
    series = _traffic((0, 120), (1.0, 3), (0, 30))
    _run_scenario(rules, tmp_path, series, {t: ["SlowBurn"] for t in ("2h5m", "2h10m", "2h30m")})


@pytest.mark.checkpoint("2.9")
def test_the_page_resolves_soon_after_the_fix(rules, tmp_path):
    """A 10-minute outage pages. Five minutes after the fix the 5m window is clean and the
    fast page resolves although the 1h ratio is still 16.7 %; the 6x page resolves once its
    30m window is clean."""
    series = _traffic((0, 60), (1.0, 10), (0, 30))
    _run_scenario(
        rules,
        tmp_path,
        series,
        {
            "1h10m": ["FastBurn", "MediumBurn", "SlowBurn"],
            "1h17m": ["MediumBurn", "SlowBurn"],
            "1h40m": ["SlowBurn"],
        },
    )


@pytest.mark.checkpoint("2.9")
def test_a_slow_burn_opens_a_ticket_but_never_pages(rules, tmp_path):
    """2 % errors (4x the budget) for an hour: above 0.5 % (ticket) but below 3 % and 7.2 %."""
    series = _traffic((0, 60), (0.02, 60))
    _run_scenario(rules, tmp_path, series, {"1h30m": ["SlowBurn"], "2h": ["SlowBurn"]})
