"""Observability as code: Prometheus rules, SLO burn-rate alerts and the Grafana dashboard.

- `slo`: the objectives (99.5 % availability, 99 % under 25 ms, over 30 days) and the
  multi-window burn-rate policy, as data.
- `rules`: recording and alerting rules built from them (checkpoint 2.9: `burn_rate_alert`).
- `rule_tests`: the scenarios of the rules' `promtool test rules` unit tests.
- `dashboards`: the Grafana dashboard JSON, and its panels' queries for use outside Grafana.
- `plots`: the same panels drawn with matplotlib from a live Prometheus (the book uses them).
- `promql`: small PromQL text helpers (metric names in an expression, dashboard variables).

`python -m mlops_pipeline.observability` (`make rules`) writes deploy/prometheus/*.yml, the
unit tests in deploy/prometheus/tests/ and deploy/grafana/flight-delay.json; `--check` only
compares, for CI.
"""
