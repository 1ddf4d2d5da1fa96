"""Rich rendering for the CLI: tables and messages, kept apart from the logic they show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from learn.grader.report import Report
    from learn.manifest import Manifest
    from learn.progress import PhaseProgress

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
    err_console.print(f"[bold red]error:[/] {message}")


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {message}")


def show_report(report: Report) -> None:
    table = Table(title=f"{report.phase}: {report.phase_title}", title_justify="left")
    table.add_column("ID", no_wrap=True)
    table.add_column("Checkpoint")
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    for cp in report.checkpoints:
        table.add_row(cp.id, cp.title, f"{cp.earned}/{cp.points}", STATUS_STYLE[cp.status])
    console.print(table)
    failing = [cp for cp in report.checkpoints if cp.status != "passed"]
    for cp in failing:
        console.print(f"\n[bold]{cp.id} {cp.title}[/]: {STATUS_STYLE[cp.status]}")
        console.print(cp.message, markup=False)
        console.print(f"[dim]hint:[/] {cp.hint}")
        console.print(
            f"[dim]book:[/] {cp.book}   [dim]one at a time:[/] learn check "
            f"{report.phase} -k {cp.id}"
        )
    passed = len(report.checkpoints) - len(failing)
    style = "green" if report.all_passed else "yellow"
    console.print(
        f"\n[bold {style}]Total: {report.earned}/{report.possible} points[/] "
        f"({passed}/{len(report.checkpoints)} checkpoints) in {report.duration:.1f} s"
    )
    console.print(f"[dim]Graded {report.target_kind}: {report.target}[/]")


def show_checkpoints(manifest: Manifest, phase_ids: list[str]) -> None:
    for phase in manifest.phases:
        if phase_ids and phase.id not in phase_ids:
            continue
        table = Table(
            title=f"{phase.id}: {phase.title} ({phase.duration}, {phase.span})",
            title_justify="left",
        )
        table.add_column("ID", no_wrap=True)
        table.add_column("Checkpoint")
        table.add_column("Points", justify="right")
        table.add_column("Book section")
        for cp in phase.checkpoints:
            table.add_row(cp.id, cp.title, str(cp.points), cp.book)
        if not phase.checkpoints:
            table.add_row("-", "[dim]checkpoints arrive with this phase's projects[/]", "", "")
        console.print(table)


def show_progress(rows: list[PhaseProgress], retired: list[str], next_command: str) -> None:
    table = Table(title="Your progress", title_justify="left")
    table.add_column("Phase")
    table.add_column("Started")
    table.add_column("Checkpoints", justify="right")
    table.add_column("Points", justify="right")
    table.add_column("Last checked")
    for row in rows:
        table.add_row(
            f"{row.phase_id}: {row.title}",
            "yes" if row.started else "-",
            f"{row.passed}/{row.total}" if row.total else "-",
            f"{row.earned}/{row.possible}" if row.possible else "-",
            row.last_checked or "-",
        )
    console.print(table)
    if retired:
        console.print(
            f"[dim]Saved results for retired checkpoints (kept, not counted): "
            f"{', '.join(retired)}[/]"
        )
    console.print(f"Next: [bold]{next_command}[/]")
