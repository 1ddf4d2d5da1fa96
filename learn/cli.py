"""The `learn` command line: a thin layer over functions that hold the behaviour.

Exit codes: 0 success (every checkpoint passed), 1 graded work failed, 2 usage or environment
error. Heavy modules are imported inside commands so that `learn --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from learn import REPO_ROOT

app = typer.Typer(
    name="learn",
    help="AI Architect Workbook: start a phase, grade your work, track progress, read the book.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WORKSPACE_ENV = "LEARN_WORKSPACE"

PhaseArg = Annotated[str, typer.Argument(help="Phase id or number, e.g. phase0 or 0.")]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "--dir",
        help=f"Your workspace (default: ${WORKSPACE_ENV} or ./workspace in the workbook).",
    ),
]


def default_workspace() -> Path:
    return Path(os.environ.get(WORKSPACE_ENV) or REPO_ROOT / "workspace").resolve()


def _usage_error(message: str) -> typer.Exit:
    from learn.ui import error

    error(message)
    return typer.Exit(2)


def _phase(phase_id: str):
    from learn.manifest import ManifestError, load_manifest

    try:
        return load_manifest().phase(phase_id)
    except (KeyError, ManifestError) as exc:
        raise _usage_error(str(exc).strip('"')) from None


@app.command()
def start(
    phase: PhaseArg,
    workspace: WorkspaceOpt = None,
    force: Annotated[
        bool, typer.Option(help="Regenerate edited files too, after backing them up.")
    ] = False,
) -> None:
    """Write (or refresh) your workspace for a phase: the labs with solutions removed."""
    from learn.regions import RegionError
    from learn.scaffold import WorkspaceConflict, start_phase
    from learn.ui import console

    chosen = _phase(phase)
    if not chosen.sources:
        raise _usage_error(f"{chosen.id} has no labs yet: they arrive with its projects")
    target = workspace or default_workspace()
    try:
        result = start_phase(chosen, target, force=force)
    except WorkspaceConflict as exc:
        raise _usage_error(str(exc)) from None
    except (RegionError, FileNotFoundError) as exc:
        raise _usage_error(f"the reference code is malformed: {exc}") from None
    console.print(
        f"[green]Workspace ready[/]: {result.workspace} "
        f"({len(result.written)} files written, {len(result.kept)} with your edits kept)"
    )
    if result.backed_up:
        console.print(f"Backed up {len(result.backed_up)} edited files to {result.backup_dir}")
    console.print(f"Next: open the files under {result.workspace}, then run:")
    console.print(f"  [bold]learn check {chosen.id}[/]" + _workspace_flag(target))


def _workspace_flag(target: Path) -> str:
    return "" if target.resolve() == default_workspace() else f" --workspace {target}"


@app.command()
def check(
    phase: PhaseArg,
    workspace: WorkspaceOpt = None,
    reference: Annotated[
        bool, typer.Option("--reference", help="Grade the reference solution instead.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("-k", help="Only this checkpoint id (repeatable).")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the JSON report.")] = None,
    junit_path: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML.")] = None,
    watch: Annotated[bool, typer.Option(help="Re-grade whenever a file changes.")] = False,
    poll: Annotated[
        bool, typer.Option(help="With --watch: poll for changes (container mounts).")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds per checkpoint test (overrides the manifest).")
    ] = None,
) -> None:
    """Grade your phase work; prints a table, saves progress, exits 0 only if all pass."""
    chosen = _phase(phase)
    if reference and workspace:
        raise _usage_error("use either --workspace or --reference, not both")
    if not chosen.checkpoints:
        raise _usage_error(f"{chosen.id} has no checkpoints yet")
    if only:
        known = {c.id for c in chosen.checkpoints}
        unknown = sorted(set(only) - known)
        if unknown:
            listed = ", ".join(sorted(known))
            raise _usage_error(
                f"{', '.join(unknown)} not in {chosen.id}; its checkpoints: {listed}"
            )
    target = REPO_ROOT if reference else (workspace or default_workspace()).resolve()
    kind = "reference" if reference else "workspace"
    if kind == "workspace" and target == REPO_ROOT.resolve():
        raise _usage_error("that folder is the workbook itself (the reference); use --reference")

    def once() -> int:
        return _grade_and_show(chosen, target, kind, only, timeout, json_path, junit_path)

    if not watch:
        raise typer.Exit(once())
    from learn.watch import watch_and_rerun

    watch_and_rerun(once, [target / s for s in chosen.sources], force_polling=poll)


def _grade_and_show(chosen, target, kind, only, timeout, json_path, junit_path) -> int:
    from learn.grader.runner import GradeRequest, GraderError, grade
    from learn.progress import record_report
    from learn.ui import console, error, show_report

    request = GradeRequest(
        phase=chosen,
        target=target,
        target_kind=kind,
        only=set(only) if only else None,
        timeout=timeout,
    )
    try:
        with console.status(f"Grading {chosen.id} ({kind}: {target}) ...") as status:

            def on_event(event: dict) -> None:
                if event.get("event") == "start":
                    status.update(f"Grading {chosen.id}: checkpoint {event.get('checkpoint')} ...")

            report = grade(request, on_event=on_event)
    except GraderError as exc:
        error(str(exc))
        return 2
    show_report(report)
    if json_path:
        report.write_json(json_path)
    if junit_path:
        report.write_junit(junit_path)
    if kind == "workspace":
        state = record_report(target, report)
        if state.recovered_from:
            console.print(
                f"[yellow]Your state file was corrupt: set aside as {state.recovered_from}"
            )
    return report.exit_code


@app.command("list")
def list_(phase: Annotated[str | None, typer.Argument(help="Only this phase.")] = None) -> None:
    """List phases and their checkpoints."""
    from learn.manifest import load_manifest
    from learn.ui import show_checkpoints

    ids = [_phase(phase).id] if phase else []
    show_checkpoints(load_manifest(), ids)


@app.command()
def progress(workspace: WorkspaceOpt = None) -> None:
    """Show points earned per phase and the next command to run."""
    from learn.manifest import load_manifest
    from learn.progress import next_step, summarise
    from learn.state import load_state
    from learn.ui import show_progress, warn

    manifest = load_manifest()
    state = load_state((workspace or default_workspace()).resolve())
    if state.recovered_from:
        warn(f"your state file was corrupt and was set aside as {state.recovered_from}")
    rows, retired = summarise(state, manifest)
    show_progress(rows, retired, next_step(rows, manifest))


@app.command()
def hint(checkpoint: Annotated[str, typer.Argument(help="Checkpoint id, e.g. 0.3.")]) -> None:
    """Show a checkpoint's hint and where the book explains it."""
    from learn.manifest import load_manifest
    from learn.ui import console

    try:
        cp = load_manifest().checkpoint(checkpoint)
    except KeyError as exc:
        raise _usage_error(str(exc).strip('"')) from None
    console.print(f"[bold]{cp.id} {cp.title}[/] ({cp.points} points, {cp.phase})")
    console.print(f"Hint: {cp.hint}")
    doc, _, anchor = cp.book.partition("#")
    url = f"http://127.0.0.1:8000/{doc}.html" + (f"#{anchor}" if anchor else "")
    console.print(f"Book: {cp.book}  ({url} while `learn book --serve` runs)")
    console.print(f"Check just this one: learn check {cp.phase} -k {cp.id}")


@app.command()
def doctor() -> None:
    """Check this machine: Python, packages, embedded PostgreSQL, GPU, disk; with fixes."""
    from learn.doctor import run_checks
    from learn.ui import console

    ok = True
    with console.status("checking ...") as status:
        for result in run_checks(progress=lambda name: status.update(f"checking {name} ...")):
            if result.ok:
                mark = "[green]  ok[/]"
            else:
                mark = "[yellow]note[/]" if result.optional else "[red]FAIL[/]"
            console.print(f"{mark}  {result.name}: {result.detail}")
            if not result.ok and result.fix:
                console.print(f"      fix: {result.fix}")
            ok = ok and (result.ok or result.optional)
    raise typer.Exit(0 if ok else 1)


@app.command()
def book(
    serve: Annotated[bool, typer.Option(help="Serve the built book on loopback.")] = False,
    build: Annotated[bool, typer.Option(help="Build first (--no-build serves as is).")] = True,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
) -> None:
    """Build the book offline (notebooks executed) and optionally serve it."""
    from learn.book import BookBuildError, BookServeError, build_book, html_dir, serve_book
    from learn.ui import console

    try:
        out = build_book() if build else html_dir()
    except BookBuildError as exc:
        raise _usage_error(str(exc)) from None
    console.print(f"Book: {out / 'index.html'}")
    if serve:
        console.print(f"Serving on http://127.0.0.1:{port}/ (Ctrl-C stops it)")
        console.print(
            f"Next, in another terminal: {_activate_hint()}[bold]learn doctor[/], "
            "then [bold]learn start phase0[/]"
        )
        try:
            serve_book(out, port=port)
        except OSError as exc:  # BookServeError explains itself; a raw socket error does not
            message = str(exc) if isinstance(exc, BookServeError) else f"port {port}: {exc}"
            raise _usage_error(message) from None


def _activate_hint() -> str:
    """'source .venv/bin/activate, then ' when `learn` is not on PATH yet, else ''."""
    import shutil
    import sys

    if shutil.which("learn"):
        return ""
    return f"[bold]source {Path(sys.prefix) / 'bin' / 'activate'}[/], then "


@app.command()
def fork(
    project: Annotated[str, typer.Argument(help="Project id, see `learn list`.")],
    dest: Annotated[Path, typer.Argument(help="New folder for the standalone repository.")],
) -> None:
    """Copy one project package into a standalone git repository you own."""
    from learn.fork import ForkError, fork_project
    from learn.ui import console

    try:
        result = fork_project(project, dest)
    except ForkError as exc:
        raise _usage_error(str(exc)) from None
    console.print(f"[green]Forked[/] {project} into {result}")
    console.print(f"Next: cd {result} && make test")


@app.command("new-repo")
def new_repo(
    dest: Annotated[Path, typer.Argument(help="Folder for the new repository.")],
    name: Annotated[str, typer.Option(help="Project name, e.g. churn-service.")],
    workspace: WorkspaceOpt = None,
    reference: Annotated[
        bool, typer.Option("--reference", help="Use the reference template.")
    ] = False,
) -> None:
    """Stamp out a new repository from your Phase 0 template (or the reference one)."""
    from learn.template import TemplateError, stamp_template
    from learn.ui import console

    root = REPO_ROOT if reference else (workspace or default_workspace()).resolve()
    source = root / "phases" / "phase0" / "repo_template"
    if not source.is_dir():
        raise _usage_error(f"no template at {source}: run `learn start phase0` or use --reference")
    try:
        created = stamp_template(source, dest, name)
    except TemplateError as exc:
        raise _usage_error(str(exc)) from None
    console.print(f"[green]Created[/] {created}")
    console.print(f"Next: cd {created} && make install && make check")


@app.command()
def verify(
    phase: Annotated[str | None, typer.Argument(help="Only this phase.")] = None,
) -> None:
    """Maintainers: the reference passes every checkpoint, a fresh scaffold none."""
    from learn.manifest import load_manifest
    from learn.ui import console
    from learn.verify import verify_phase

    manifest = load_manifest()
    phases = [_phase(phase)] if phase else [p for p in manifest.phases if p.checkpoints]
    ok = True
    for chosen in phases:
        console.print(f"[bold]Verifying {chosen.id}[/] ...")
        outcome = verify_phase(chosen)
        for line in outcome.lines:
            console.print(f"  {line}")
        ok = ok and outcome.ok
    console.print("[green]verify: OK[/]" if ok else "[red]verify: FAILED[/]")
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
