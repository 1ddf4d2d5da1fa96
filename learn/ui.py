"""Everything the CLI prints: tables and messages, kept apart from the logic they show.

Functions take plain data (reports, manifest entries, check results) and render it; none of
them decides anything. The CLI calls them; tests read their output through the CLI. Data is
escaped (`esc`) before Rich sees it: a hint's ``[y == k]`` is text, not a style tag.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

if TYPE_CHECKING:
    from learn.doctor import CheckResult
    from learn.grader.report import Report
    from learn.manifest import Checkpoint, Manifest
    from learn.progress import PhaseProgress
    from learn.verify import VerifyOutcome

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

STATUS_STYLE = {
    "passed": "[green]pass[/]",
    "failed": "[red]fail[/]",
    "error": "[bold red]error[/]",
    "timeout": "[magenta]timeout[/]",
    "skipped": "[yellow]skipped[/]",
}


def error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {esc(message)}")


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {esc(message)}")


def info(message: str) -> None:
    console.print(message)


def show_report(report: Report, one_at_a_time: str) -> None:
    """The grade table, then for each failing checkpoint why, its hint and where to read.

    `one_at_a_time` is the command that re-grades one checkpoint, with ``{id}`` in it.
    """
    table = Table(title=f"{report.phase}: {report.phase_title}", title_justify="left")
    table.add_column("ID", no_wrap=True)
    table.add_column("Checkpoint")
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    for cp in report.checkpoints:
        table.add_row(cp.id, esc(cp.title), f"{cp.earned}/{cp.points}", STATUS_STYLE[cp.status])
    console.print(table)
    failing = [cp for cp in report.checkpoints if cp.status != "passed"]
    for cp in failing:
        console.print(f"\n[bold]{cp.id} {esc(cp.title)}[/]: {STATUS_STYLE[cp.status]}")
        console.print(cp.message, markup=False)
        console.print(f"[dim]hint:[/] {esc(cp.hint)}")
        if cp.requires:
            console.print(f"[dim]needs first:[/] {', '.join(cp.requires)}")
        again = esc(one_at_a_time.format(id=cp.id))
        console.print(f"[dim]book:[/] {esc(cp.book)}   [dim]one at a time:[/] {again}")
    passed = len(report.checkpoints) - len(failing)
    style = "green" if report.all_passed else "yellow"
    console.print(
        f"\n[bold {style}]Total: {report.earned}/{report.possible} points[/] "
        f"({passed}/{len(report.checkpoints)} checkpoints) in {report.duration:.1f} s"
    )
    console.print(f"[dim]Graded {report.target_kind}: {esc(report.target)}[/]")


def show_checkpoints(manifest: Manifest, phase_ids: list[str]) -> None:
    for phase in manifest.phases:
        if phase_ids and phase.id not in phase_ids:
            continue
        table = Table(
            title=esc(f"{phase.id}: {phase.title} ({phase.duration}, {phase.span})"),
            title_justify="left",
        )
        table.add_column("ID", no_wrap=True)
        table.add_column("Checkpoint")
        table.add_column("Points", justify="right")
        table.add_column("Needs", no_wrap=True)
        table.add_column("Book section")
        for cp in phase.checkpoints:
            table.add_row(
                cp.id, esc(cp.title), str(cp.points), ", ".join(cp.requires) or "-", esc(cp.book)
            )
        if not phase.checkpoints:
            table.add_row("-", "[dim]checkpoints arrive with this phase's projects[/]", "", "", "")
        console.print(table)


def show_hint(cp: Checkpoint, book_link: str, check_command: str) -> None:
    console.print(f"[bold]{cp.id} {esc(cp.title)}[/] ({cp.points} points, {cp.phase})")
    if cp.requires:
        console.print(f"Needs {', '.join(cp.requires)} first: its tests run that code too.")
    console.print(f"Hint: {esc(cp.hint)}")
    console.print(f"Book: {esc(cp.book)}  {esc(book_link)}")
    console.print(f"Check just this one: {esc(check_command)}")


def show_progress(
    rows: list[PhaseProgress], retired: list[str], next_command: str, why: str
) -> None:
    """Points per phase (now and best), the unfinished phases' checkpoints, and what is next."""
    table = Table(title="Your progress", title_justify="left")
    table.add_column("Phase")
    table.add_column("Started")
    table.add_column("Passing now", justify="right")
    table.add_column("Points now", justify="right")
    table.add_column("Best", justify="right")
    table.add_column("Last checked")
    for row in rows:
        table.add_row(
            esc(f"{row.phase_id}: {row.title}"),
            "yes" if row.started else "-",
            f"{row.passed}/{row.total}" if row.total else "-",
            f"{row.earned}/{row.possible}" if row.possible else "-",
            str(row.best) if row.possible else "-",
            row.last_checked or "-",
        )
    console.print(table)
    for row in rows:
        if row.started and row.checkpoints and not row.complete:
            _show_phase_detail(row)
    if retired:
        console.print(
            f"[dim]Saved results for retired checkpoints (kept, not counted): "
            f"{', '.join(retired)}[/]"
        )
    console.print(f"Next: [bold]{esc(next_command)}[/]  [dim]({esc(why)})[/]")


def _show_phase_detail(row: PhaseProgress) -> None:
    table = Table(title=f"{row.phase_id} checkpoints", title_justify="left")
    table.add_column("ID", no_wrap=True)
    table.add_column("Checkpoint")
    table.add_column("Latest", no_wrap=True)
    table.add_column("Points now", justify="right")
    table.add_column("Best", justify="right")
    table.add_column("Needs", no_wrap=True)
    for cp in row.checkpoints:
        latest = STATUS_STYLE.get(cp.status or "", "[dim]not graded[/]")
        table.add_row(
            cp.id,
            esc(cp.title),
            latest,
            f"{cp.earned}/{cp.points}",
            f"{cp.best}/{cp.points}",
            ", ".join(cp.requires) or "-",
        )
    console.print(table)


def show_doctor(results: Iterable[CheckResult]) -> bool:
    """One line per check, a fix under each failure; True when no required check failed."""
    ok = True
    for result in results:
        if result.ok:
            mark = "[green]  ok[/]"
        else:
            mark = "[yellow]note[/]" if result.optional else "[red]FAIL[/]"
        console.print(f"{mark}  {esc(result.name)}: {esc(result.detail)}")
        if not result.ok and result.fix:
            console.print(f"      fix: {esc(result.fix)}")
        ok = ok and (result.ok or result.optional)
    return ok


def show_verify(phase_id: str, outcome: VerifyOutcome) -> None:
    table = Table(title=f"verify {phase_id}", title_justify="left")
    table.add_column("Graded", no_wrap=True)
    table.add_column("Points", justify="right")
    table.add_column("Expected", justify="right")
    table.add_column("Seconds", justify="right")
    for label, report, expected in (
        ("reference", outcome.reference, "all"),
        ("fresh scaffold", outcome.scaffold, "0"),
    ):
        if report is not None:
            table.add_row(
                label, f"{report.earned}/{report.possible}", expected, f"{report.duration:.1f}"
            )
    console.print(table)
    for problem in outcome.problems:
        console.print(f"  [red]FAIL[/] {esc(problem)}")


def show_requires(phase_id: str, outcome: VerifyOutcome) -> None:
    """The `learn verify --requires` proof: OK, or each requirement that is wrong."""
    verdict = "[red]problems[/]" if outcome.problems else "[green]OK[/]"
    console.print(f"[bold]{phase_id} requires[/]: {verdict}")
    for problem in outcome.problems:
        console.print(f"  [red]FAIL[/] {esc(problem)}")


def show_verify_total(ok: bool) -> None:
    console.print("[green]verify: OK[/]" if ok else "[red]verify: FAILED[/]")
