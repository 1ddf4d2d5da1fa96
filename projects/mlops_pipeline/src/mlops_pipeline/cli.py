"""`mlops`: run the pipeline, backfill days, check contracts. A thin layer over the library.

Every command takes `--home` (default `$MLOPS_HOME`, else ./.mlops) and prints what it did; a
failure prints one line naming the task and the interval and exits 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from mlops_pipeline import offline
from mlops_pipeline.paths import Paths

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])
contracts_app = typer.Typer(
    no_args_is_help=True, help="Data contracts: show them, check the landing zone."
)
app.add_typer(contracts_app, name="contracts")

Home = Annotated[
    Path | None, typer.Option("--home", help="Pipeline home (default $MLOPS_HOME, else ./.mlops).")
]


def _offline(paths: Paths) -> None:
    """No telemetry; Prefect's results and state under the home unless the user set their own."""
    offline.apply()
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(paths.home / "prefect" / "results"))


def _run_flow(name: str, start: str, end: str, home: Path | None, options: dict) -> None:
    """Check the interval, then run flow `name` of pipeline.flow; one error line on failure."""
    _check_interval(start, end)
    paths = Paths.at(home).ensure()
    _offline(paths)  # before Prefect is imported: its settings are read at import
    from mlops_pipeline.pipeline import flow
    from mlops_pipeline.pipeline.errors import PipelineError

    try:
        report = getattr(flow, name)(str(paths.home), start, end, **options)
    except (PipelineError, ValueError) as error:
        _fail(error)
    _summary(report)


def _check_interval(start: str, end: str) -> None:
    """A bad interval is refused before anything (Prefect's API, the database) starts."""
    from mlops_pipeline.pipeline.intervals import Interval

    try:
        Interval.parse(start, end)
    except ValueError as error:
        _fail(error)


def _fail(error: Exception) -> None:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def run(
    start: Annotated[str, typer.Option(help="First day of the data interval (UTC date).")],
    end: Annotated[str, typer.Option(help="Day after the last (the interval is [start, end)).")],
    home: Home = None,
    train_start: Annotated[
        str | None, typer.Option(help="Train on flights from this day (default: start).")
    ] = None,
    train: Annotated[bool, typer.Option(help="Train, gate and register a model.")] = True,
    online: Annotated[bool, typer.Option(help="Materialise features to Feast online.")] = True,
    replay: Annotated[bool, typer.Option(help="Replay the interval into the source.")] = True,
    seed: int = 0,
) -> None:
    """Replay [start, end) into the source; ingest, validate, features, train, gate, register."""
    options = dict(train_start=train_start, seed=seed, replay=replay, train=train, online=online)
    _run_flow("pipeline", start, end, home, options)


@app.command()
def canary(
    home: Home = None,
    day: Annotated[
        str | None, typer.Option(help="Replay this day's flights (default: the last feature day).")
    ] = None,
    rate: Annotated[float, typer.Option(help="Requests per second through the router.")] = 60.0,
    steps: Annotated[str, typer.Option(help="Canary weights in percent, comma-separated.")] = (
        "3,10,25,50,100"
    ),
    step_seconds: Annotated[float, typer.Option(help="Least time at each step.")] = 8.0,
    window: Annotated[str, typer.Option(help="PromQL window of the analysis.")] = "60s",
    blue_green: Annotated[bool, typer.Option(help="One switch after a smoke test.")] = False,
    shadow_seconds: Annotated[
        float, typer.Option(help="Mirror traffic to the canary this long first.")
    ] = 0.0,
) -> None:
    """Roll the `challenger` alias out against `champion` behind nginx, judged on Prometheus."""
    import json

    import pandas as pd

    paths = Paths.at(home).ensure()
    _offline(paths)
    from mlops_pipeline.rollout.bench import LOCAL_THRESHOLDS, latest_feature_day, rehearse
    from mlops_pipeline.rollout.traffic import flight_requests

    try:
        weights = tuple(float(w) for w in steps.split(",") if w.strip())
        day = day or latest_feature_day(paths)
        as_of = (pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)).isoformat()
        result, report, _ = rehearse(
            paths, paths.runs / "canary", flight_requests(day), rate, clock="fixed", as_of=as_of,
            blue_green=blue_green, steps=weights, step_seconds=step_seconds, window=window,
            shadow_seconds=shadow_seconds, thresholds=LOCAL_THRESHOLDS, max_holds=90,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        _fail(error)
    typer.echo(json.dumps({"outcome": result.outcome, "reasons": result.reasons}, indent=2))
    typer.echo(f"answers by role: {report.counts()}; timeline: {result.timeline_path}")
    if result.outcome != "promoted":
        raise typer.Exit(3)


@app.command()
def monitor(
    home: Home = None,
    reference: Annotated[
        tuple[str, str], typer.Option(help="First and last reference month (YYYY-MM).")
    ] = ("2013-01", "2013-02"),
    month: Annotated[
        list[str] | None, typer.Option("--month", help="Only this month (repeatable).")
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="Score with this registry alias (default: train one).")
    ] = None,
    reports: Annotated[bool, typer.Option(help="Write Evidently HTML reports.")] = True,
) -> None:
    """Drift and data quality month by month against a reference window (PSI, KS, Evidently)."""
    paths = Paths.at(home).ensure()
    _offline(paths)
    from mlops_pipeline.monitoring.drift import run_monthly

    try:
        result = run_monthly(
            paths.home, reference=reference, months=month, model_alias=alias, reports=reports
        )
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    typer.echo(result.summary().to_string())
    first, columns = result.first_detection()
    typer.echo(f"first drift alert: {first or 'none'} {', '.join(columns)}")
    if result.path is not None:
        typer.echo(f"written: {result.path}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def serve(ctx: typer.Context) -> None:
    """Run the prediction service (options: `mlops serve --help`)."""
    from mlops_pipeline.serving.main import main as serve_main

    raise typer.Exit(serve_main(list(ctx.args)))


@app.command()
def backfill(
    start: Annotated[str, typer.Argument(help="First day (UTC date).")],
    end: Annotated[str, typer.Argument(help="Day after the last.")],
    home: Home = None,
    train: Annotated[bool, typer.Option(help="Train, gate and register at the end.")] = True,
    online: Annotated[bool, typer.Option(help="Materialise features online at the end.")] = True,
    seed: int = 0,
) -> None:
    """The data steps day by day over [START, END), then one model on the whole range."""
    _run_flow("backfill", start, end, home, dict(seed=seed, train=train, online=online))


@contracts_app.command("show")
def contracts_show(
    table: Annotated[list[str] | None, typer.Option("--table", help="Only this table.")] = None,
) -> None:
    """Print each contract: version, owner, columns with units and allowed values."""
    from mlops_pipeline.contracts.commands import show

    for text in show(table).values():
        typer.echo(text)


@contracts_app.command("check")
def contracts_check(
    home: Home = None,
    table: Annotated[list[str] | None, typer.Option("--table", help="Only this table.")] = None,
) -> None:
    """Validate every landing partition; exit 1 if any breaks its contract."""
    from mlops_pipeline.contracts.commands import check

    outcomes = check(Paths.at(home).home, table)
    for outcome in outcomes:
        if outcome.breach is not None:
            typer.secho(f"{outcome.table} {outcome.date}: {outcome.breach}", fg=typer.colors.RED)
        else:
            counts = outcome.report.counts
            typer.echo(
                f"{outcome.table} {outcome.date}: {counts.rows_in} rows, {counts.valid} valid, "
                f"{counts.quarantined} quarantined"
            )
    if not outcomes:
        typer.echo(f"no landing partitions under {Paths.at(home).landing}")
    if not all(outcome.ok for outcome in outcomes):
        raise typer.Exit(1)


def _summary(report: dict) -> None:
    promotion = report.get("promotion")
    if promotion:
        verdict = "champion" if promotion["promoted"] else "challenger only"
        typer.echo(
            f"registered {promotion['model_name']} v{promotion['version']} "
            f"({promotion['candidate']}): {verdict}"
        )
        for reason in promotion.get("reasons", []):
            typer.echo(f"  {reason}")
    typer.echo(f"run report: {report['report']}")
    if os.environ.get("MLOPS_PRINT_REPORT"):
        typer.echo(json.dumps(report, indent=2, default=str))


def main() -> None:
    app()
