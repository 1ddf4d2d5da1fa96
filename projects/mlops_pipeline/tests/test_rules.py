"""Prometheus rules as code: the generator, the committed files, promtool, and the runbooks."""

from __future__ import annotations

import re

import pytest
import yaml
from observability_support import (
    DEPLOY,
    DESIGN_METRICS,
    PROMETHEUS_METRICS,
    RUNBOOKS,
    check_exprs_parse,
    run_promtool,
)

from mlops_pipeline.observability import __main__ as cli
from mlops_pipeline.observability import rule_tests, rules
from mlops_pipeline.observability.promql import metric_names, substitute
from mlops_pipeline.observability.slo import AVAILABILITY, LATENCY, MULTI_WINDOWS, SLOS

PROM = DEPLOY / "prometheus"
ANNOTATIONS = {"summary", "description", "runbook_url"}


def _rules(document: dict) -> list[dict]:
    return [rule for group in document["groups"] for rule in group["rules"]]


def _thresholds(expr: str) -> list[float]:
    return [float(x) for x in re.findall(r">\s*([0-9.eE+-]+)", expr)]


# --- generator and committed files -----------------------------------------------------------


def test_committed_files_equal_the_generator():
    """deploy/ holds exactly what `make rules` writes: rules, promtool tests and dashboard."""
    for path, text in cli.generated_files(DEPLOY).items():
        assert path.is_file(), f"{path} missing: run `make rules`"
        assert path.read_text() == text, f"{path} differs from the generator: run `make rules`"


def test_check_mode_reports_drift_and_writes_nothing(tmp_path, capsys):
    """--check exits 1 naming the files on an empty folder, 0 once they are written."""
    assert cli.main(["--deploy", str(tmp_path), "--check"]) == 1
    assert "alerts.yml" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    assert cli.main(["--deploy", str(tmp_path)]) == 0
    assert cli.main(["--deploy", str(tmp_path), "--check"]) == 0
    (tmp_path / "prometheus" / "alerts.yml").write_text("groups: []\n")
    assert cli.main(["--deploy", str(tmp_path), "--check"]) == 1


def test_runbook_base_url_is_configurable(tmp_path):
    """Another base URL changes every runbook_url and the promtool tests' expectations alike."""
    base = "https://git.example.org/ml/runbooks/"
    files = cli.generated_files(tmp_path, base)
    alerts = yaml.safe_load(files[tmp_path / "prometheus" / "alerts.yml"])
    urls = {r["annotations"]["runbook_url"] for r in _rules(alerts)}
    assert urls == {f"{base}{name}.md" for name in rules.alert_names()}
    tests_text = files[tmp_path / "prometheus" / "tests" / "availability_test.yml"]
    assert rules.RUNBOOK_BASE_URL not in tests_text and base in tests_text


def test_recording_rules_cover_the_design():
    """The HPA metric counts the prediction routes per pod; every SLO window is recorded, over
    valid events (POST /v1/predict without 4xx) in both SLIs' denominators."""
    recorded = {r["record"]: r["expr"] for r in _rules(rules.recording_rules())}
    assert recorded["mlops_http_requests_per_second"] == (
        'sum by (namespace, pod) (rate(mlops_http_requests_total{route=~"/v1/predict.*"}[1m]))'
    )
    assert "role:mlops_http_requests:rate1m" in recorded
    valid = 'mlops_http_requests_total{route="/v1/predict",status!~"4.."}'
    for slo in SLOS:
        for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
            expr = recorded[f"{slo.sli}_rate{window}"]
            assert f"[{window}]" in expr and 'route="/v1/predict"' in expr
            assert expr.endswith(f"sum by (namespace) (rate({valid}[{window}]))"), expr
    assert 'le="0.025"' in recorded[LATENCY.ratio("1h")]
    assert 'status=~"5.."' in recorded[AVAILABILITY.ratio("1h")]


def test_the_slo_period_is_recorded_in_a_slower_group():
    """The 30-day ratios sit in their own group, evaluated every 2m30s (inside Prometheus'
    5-minute lookback, so an instant query always finds a sample); nothing else is there."""
    main, period = rules.recording_rules()["groups"]
    assert main["name"] == rules.RECORDING_GROUP and "interval" not in main
    assert period == {
        "name": rules.PERIOD_GROUP,
        "interval": rules.PERIOD_INTERVAL,
        "rules": [
            {"record": slo.ratio("30d"), "expr": rules.sli_expression(slo, "30d")} for slo in SLOS
        ],
    }
    units = {"s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+)([smh])", rules.PERIOD_INTERVAL)
    assert "".join(n + u for n, u in parts) == rules.PERIOD_INTERVAL
    assert 60 <= sum(int(n) * units[u] for n, u in parts) < 300
    assert AVAILABILITY.ratio("30d") == "mlops:predict_requests:error_ratio_rate30d"
    with pytest.raises(ValueError, match="recorded windows"):
        AVAILABILITY.ratio("7d")
    local = rules.recording_rules_every("1s")  # for a short-lived Prometheus
    assert [g["interval"] for g in local["groups"]] == ["1s", "1s"]
    assert [g["rules"] for g in local["groups"]] == [main["rules"], period["rules"]]
    with pytest.raises(ValueError, match="Prometheus duration"):
        rules.recording_rules_every("soon")


def test_every_alert_has_severity_annotations_and_its_runbook_url():
    """severity page|ticket, summary/description/runbook_url, url = base/<alert>.md."""
    for rule in _rules(rules.alert_rules()):
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert set(rule["annotations"]) == ANNOTATIONS, rule["alert"]
        assert all(rule["annotations"].values()), rule["alert"]
        assert rule["annotations"]["runbook_url"] == (
            f"{rules.RUNBOOK_BASE_URL}/{rule['alert']}.md"
        )
    assert rules.RUNBOOK_BASE_URL.endswith("projects/mlops_pipeline/docs/runbooks")


def test_burn_rate_alerts_follow_the_multi_window_policy():
    """Per SLO: 14.4x 1h&5m page, 6x 6h&30m page, 1x 3d&6h ticket; thresholds = factor*budget."""
    alerts = _rules(rules.alert_rules())
    for slo in SLOS:
        mine = [r for r in alerts if r["alert"] == slo.alert]
        assert len(mine) == len(MULTI_WINDOWS) == 3
        for rule, window in zip(mine, MULTI_WINDOWS, strict=True):
            assert rule["labels"] == {"severity": window.severity, "window": window.long}
            assert f"{slo.sli}_rate{window.long} >" in rule["expr"]
            assert f"{slo.sli}_rate{window.short} >" in rule["expr"]
            assert " and\n" in rule["expr"] or "\nand\n" in rule["expr"]
            expected = window.factor * (1 - slo.objective)
            assert _thresholds(rule["expr"]) == [pytest.approx(expected, rel=1e-9)] * 2
    fast = next(r for r in alerts if r["alert"] == AVAILABILITY.alert)
    assert _thresholds(fast["expr"]) == [0.072, 0.072]  # 14.4 x 0.5 %, printed without noise


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"long_window": "4h"}, "not a recorded series"),
        ({"short_window": "2m"}, "not a recorded series"),
        ({"long_window": "5m", "short_window": "1h"}, "must exceed"),
        ({"slo": 1.0}, "slo must be in"),
        ({"factor": 250.0}, "must be in (0, 1)"),
        ({"severity": "critical"}, "severity must be"),
        ({"annotations": {"summary": "s", "description": "d"}}, "runbook_url"),
        ({"name": "bad name"}, "alert name"),
        ({"sli": "mlops:nothing"}, "not a recorded series"),
    ],
)
def test_burn_rate_alert_refuses_rules_that_could_never_fire(change, message):
    """An unrecorded window, an impossible threshold or a missing annotation is a ValueError."""
    args = {
        "name": "Burn",
        "slo": 0.995,
        "long_window": "1h",
        "short_window": "5m",
        "factor": 14.4,
        "severity": "page",
        "annotations": {"summary": "s", "description": "d", "runbook_url": "u"},
    } | change
    with pytest.raises(ValueError, match=re.escape(message)):
        rules.burn_rate_alert(**args)


def test_model_alerts_watch_feeds_not_reference_data():
    """Missing/stale alerts name only views with a TTL; thresholds come from the TTLs."""
    alerts = {r["alert"]: r for r in _rules(rules.alert_rules())}
    assert "planes" not in alerts["FeaturesMissing"]["expr"]
    assert alerts["FeaturesMissing"]["for"] == "10m"
    assert _thresholds(alerts["FeaturesMissing"]["expr"]) == [0.05]
    staleness = alerts["FeatureStalenessHigh"]["expr"]
    assert "planes" not in staleness and sorted(_thresholds(staleness)) == [5400, 8100]
    assert "offset 7d" in alerts["PredictionScoreShift"]["expr"]


# --- metric names --------------------------------------------------------------------------


def test_metric_names_helper_finds_series_not_functions_or_labels():
    """metric_names skips functions, aggregations, label names, durations and strings."""
    expr = (
        'histogram_quantile(0.99, sum by (le, role) (rate(a_bucket{le="0.5",x=~"y|z"}[5m])))'
        ' / on (role) group_left () b:c:d offset 1d > 1e-3 and absent(up{job="j"})'
    )
    assert metric_names(expr) == {"a_bucket", "b:c:d", "up"}
    assert substitute(
        'x{role=~"$role"}[${__rate_interval}]', {"role": ".+", "__rate_interval": "1m"}
    ) == ('x{role=~".+"}[1m]')
    with pytest.raises(KeyError, match=r"\$role"):
        substitute('x{role=~"$role"}', {})


def test_rules_use_only_design_metrics_and_recorded_series():
    """Recording rules read the design's metrics; alerts read recorded series (or `up`)."""
    recorded = set(rules.recorded_names())
    for rule in _rules(rules.recording_rules()):
        unknown = metric_names(rule["expr"]) - DESIGN_METRICS
        assert not unknown, f"{rule['record']} reads unknown metrics {unknown}"
    for rule in _rules(rules.alert_rules()):
        unknown = metric_names(rule["expr"]) - recorded - DESIGN_METRICS - PROMETHEUS_METRICS
        assert not unknown, f"{rule['alert']} reads unknown series {unknown}"


def test_the_service_exposes_the_design_metrics():
    """The serving module's registry exposes every design metric name (and the rules' inputs)."""
    from mlops_pipeline.serving.observability import Metrics

    metrics = Metrics()
    metrics.observe_request("/v1/predict", "POST", 200, 0.01)
    metrics.observe_prediction(0.3, {"weather": 60.0}, {"weather": "stale"})
    metrics.set_model("flight-delay", "1", "champion")
    metrics.lookup.observe(0.001)
    metrics.model_time.observe(0.001)
    exposed = {s.name for family in metrics.registry.collect() for s in family.samples}
    assert exposed >= DESIGN_METRICS, DESIGN_METRICS - exposed


# --- runbooks ------------------------------------------------------------------------------


def test_every_alert_has_a_runbook_with_the_three_sections():
    """docs/runbooks/<alert>.md: what it means, how to check (PromQL), what to do; indexed."""
    names = rules.alert_names()
    for name in names:
        page = RUNBOOKS / f"{name}.md"
        assert page.is_file(), f"no runbook for {name}: write {page}"
        text = page.read_text()
        assert text.startswith(f"# {name}\n"), page
        for section in ("## What it means", "## How to check", "## What to do"):
            assert section in text, f"{page}: missing '{section}'"
        assert "```promql" in text, f"{page}: no PromQL to check with"
    index = (RUNBOOKS / "README.md").read_text()
    assert all(f"({name}.md)" in index for name in names)


@pytest.mark.slow
def test_runbook_queries_parse(tmp_path):
    """Every PromQL snippet in the alerts' runbooks is valid (one query per paragraph)."""
    queries = {}
    for page in (RUNBOOKS / f"{name}.md" for name in rules.alert_names()):
        for block in re.findall(r"```promql\n(.*?)```", page.read_text(), flags=re.S):
            for i, paragraph in enumerate(re.split(r"\n\s*\n", block.strip())):
                lines = [ln for ln in paragraph.splitlines() if not ln.startswith("#")]
                queries[f"{page.name}[{i}]"] = "\n".join(lines)
    assert len(queries) >= 25
    check_exprs_parse(queries, tmp_path)


# --- promtool ------------------------------------------------------------------------------


@pytest.mark.slow
def test_promtool_check_rules_accepts_every_file():
    """promtool check rules: both files load, with the expected number of rules."""
    for name, count in (("recording.yml", len(rules.recorded_names())), ("alerts.yml", 11)):
        result = run_promtool("check", "rules", PROM / name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {count} rules found" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("test_file", sorted(rule_tests.TEST_FILES))
def test_promtool_unit_tests_pass(test_file):
    """promtool test rules: every alert fires and stays quiet when the scenarios say so."""
    result = run_promtool("test", "rules", test_file, cwd=PROM / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_tests_cover_every_alert_and_recording_rule():
    """Each alert is expected firing somewhere and quiet somewhere; each recorded value checked
    (the long SLO windows and the 1h score mean through the alerts that read them)."""
    firing, quiet, exprs = set(), set(), ""
    for name in rule_tests.TEST_FILES:
        document = yaml.safe_load((PROM / "tests" / name).read_text())
        for test in document["tests"]:
            for check in test.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
            exprs += " ".join(c["expr"] for c in test.get("promql_expr_test", []))
    assert firing == quiet == set(rules.alert_names())
    via_alerts = {"role:mlops_prediction_score:mean_rate1h"} | {
        slo.ratio(w) for slo in SLOS for w in ("30m", "2h", "6h", "1d")
    }
    unchecked = {n for n in rules.recorded_names() if n not in exprs} - via_alerts
    assert not unchecked, f"recording rules without a value test: {unchecked}"


@pytest.mark.slow
def test_promtool_tests_catch_a_burn_alert_without_its_short_window(tmp_path):
    """Mutation: the 14.4x rule on the 1h window alone keeps paging after the fix; the
    availability scenarios fail (they expect it resolved five minutes after the outage)."""
    (tmp_path / "tests").mkdir()
    for name in ("recording.yml", "alerts.yml"):
        (tmp_path / name).write_text((PROM / name).read_text())
    (tmp_path / "tests" / "availability_test.yml").write_text(
        (PROM / "tests" / "availability_test.yml").read_text()
    )
    alerts = yaml.safe_load((tmp_path / "alerts.yml").read_text())
    fast = next(r for r in _rules(alerts) if r["labels"].get("window") == "1h")
    fast["expr"] = fast["expr"].split("\nand\n")[0]
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(alerts, sort_keys=False))
    result = run_promtool("test", "rules", "availability_test.yml", cwd=tmp_path / "tests")
    report = result.stdout + result.stderr
    assert result.returncode == 1
    assert "time: 5h30m" in report and 'window="1h"' in report


@pytest.mark.slow
def test_promtool_tests_catch_an_sli_counting_every_route(tmp_path):
    """Mutation: an error ratio over all routes (the batch route too) breaks the value tests."""
    (tmp_path / "tests").mkdir()
    recording = (PROM / "recording.yml").read_text()
    recording = recording.replace('{route="/v1/predict",', "{").replace('{route="/v1/predict"}', "")
    (tmp_path / "recording.yml").write_text(recording)
    (tmp_path / "alerts.yml").write_text((PROM / "alerts.yml").read_text())
    (tmp_path / "tests" / "recording_test.yml").write_text(
        (PROM / "tests" / "recording_test.yml").read_text()
    )
    result = run_promtool("test", "rules", "recording_test.yml", cwd=tmp_path / "tests")
    report = result.stdout + result.stderr
    assert result.returncode == 1
    assert re.search(r"expr: .*error_ratio_rate5m.*\n\s*exp: .*\n\s*got: ", report), report


def _mutated_run(tmp_path, test_file: str, old: str, new: str = "") -> str:
    """promtool test rules on a copy of the rules with `old` replaced in recording.yml; the
    run must fail (exit 1). Returns promtool's report."""
    (tmp_path / "tests").mkdir()
    recording = (PROM / "recording.yml").read_text()
    assert old in recording, f"mutation target {old!r} not in recording.yml"
    (tmp_path / "recording.yml").write_text(recording.replace(old, new))
    (tmp_path / "alerts.yml").write_text((PROM / "alerts.yml").read_text())
    (tmp_path / "tests" / test_file).write_text((PROM / "tests" / test_file).read_text())
    result = run_promtool("test", "rules", test_file, cwd=tmp_path / "tests")
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("test_file", "failing"),
    [
        ("availability_test.yml", r"alertname: PredictAvailabilityBudgetBurn, time: 30m"),
        ("latency_test.yml", r"alertname: PredictLatencyBudgetBurn, time: 30m"),
        ("recording_test.yml", r"expr: .*slow_ratio_rate30d.*\n\s*exp: .*\n\s*got: "),
    ],
)
def test_promtool_tests_catch_an_sli_counting_4xx_as_valid(tmp_path, test_file, failing):
    """Mutation: with 4xx back in the denominators, a flood of 422s dilutes both SLIs below
    their thresholds; the scenarios expecting the alerts (and the recorded values) fail."""
    report = _mutated_run(tmp_path, test_file, ',status!~"4.."')
    assert re.search(failing, report), report


@pytest.mark.slow
def test_promtool_tests_catch_an_hpa_metric_counting_probes(tmp_path):
    """Mutation: the HPA's per-pod rate over every route (probes, scrapes) fails its value
    test."""
    report = _mutated_run(tmp_path, "recording_test.yml", '{route=~"/v1/predict.*"}')
    assert re.search(
        r"expr: .*\bmlops_http_requests_per_second\b.*\n\s*exp: .*\n\s*got: ", report
    ), report


def test_counter_and_gauge_notation():
    """The series helpers write promtool's expanding notation with absolute start values."""
    assert rule_tests.counter((100, 3), (0, 2)) == "0 100+100x2 300+0x1"
    assert rule_tests.counter((0.5, 1)) == "0 0.5+0.5x0"
    assert rule_tests.gauge((1, 2), (0, 3)) == "1+0x1 0+0x2"
    with pytest.raises(ValueError, match="at least one step"):
        rule_tests.counter((1, 0))
