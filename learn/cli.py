"""The `learn` command line: a thin layer over functions that hold the behaviour.

Each command parses its options, calls one function, and hands the result to `learn.ui`.
Exit codes: 0 success (every checkpoint passed), 1 graded work failed, 2 usage or environment
error. Heavy modules are imported inside commands so that `learn --help` stays fast.
"""

from __future__ import annotations

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

PhaseArg = Annotated[str, typer.Argument(help="Phase id or number, e.g. phase0 or 0.")]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "--dir",
        help="Your workspace (default: $LEARN_WORKSPACE, else the workspace you stand in, else "
        "./workspace if it is one, else the workbook's workspace/).",
    ),
]


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
    from learn.kernel import DISPLAY_NAME, install_kernel
    from learn.regions import RegionError
    from learn.scaffold import WorkspaceConflict, start_phase
    from learn.ui import info, warn
    from learn.workspace import command_for, resolve_workspace

    chosen = _phase(phase)
    if not chosen.sources:
        raise _usage_error(f"{chosen.id} has no labs yet: they arrive with its projects")
    target = resolve_workspace(workspace)
    if target == REPO_ROOT.resolve():
        raise _usage_error("that folder is the workbook itself; choose another with --workspace")
    try:
        result = start_phase(chosen, target, force=force)
    except WorkspaceConflict as exc:
        raise _usage_error(str(exc)) from None
    except (RegionError, FileNotFoundError) as exc:
        raise _usage_error(f"the reference code is malformed: {exc}") from None
    try:
        install_kernel()  # the notebooks' kernel, which imports the workspace's own code
    except OSError as exc:
        warn(
            f"could not install the notebooks' Jupyter kernel ({exc}); without it, notebooks "
            "import the reference: run `python -m learn.kernel install` where you may write"
        )
    info(
        f"[green]Workspace ready[/]: {result.workspace} "
        f"({len(result.written)} files written, {len(result.kept)} with your edits kept)"
    )
    if result.backed_up:
        info(f"Backed up {len(result.backed_up)} edited files to {result.backup_dir}")
    if any(rel.endswith(".ipynb") for rel in [*result.written, *result.kept]):
        info(
            f"Open the notebooks with the '{DISPLAY_NAME}' kernel: it imports your workspace's "
            "code (any other kernel imports the workbook's reference)."
        )
    info(f"Next: open the files under {result.workspace}, then run:")
    info(f"  [bold]{command_for(f'check {chosen.id}', result.workspace)}[/]")


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
        float | None,
        typer.Option(min=0.1, help="Seconds each checkpoint may use (overrides curriculum.yaml)."),
    ] = None,
) -> None:
    """Grade your phase work; prints a table, saves progress, exits 0 only if all pass."""
    from learn.workspace import resolve_workspace

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
    target = REPO_ROOT.resolve() if reference else resolve_workspace(workspace)
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
    from learn.ui import console, error, show_report, warn
    from learn.workspace import command_for

    request = GradeRequest(
        phase=chosen,
        target=target,
        target_kind=kind,
        only=set(only) if only else None,
        timeout=timeout,
    )
    try:
        with console.status(f"Grading {chosen.id} ({kind}: {target}) ...") as status:

            def on_event(event) -> None:
                if event["event"] == "start":
                    status.update(f"Grading {chosen.id}: checkpoint {event['checkpoint']} ...")

            report = grade(request, on_event=on_event)
    except GraderError as exc:
        error(str(exc))
        return 2
    if kind == "reference":
        one_at_a_time = f"learn check {chosen.id} --reference -k {{id}}"
    else:
        one_at_a_time = command_for(f"check {chosen.id} -k {{id}}", target)
    show_report(report, one_at_a_time)
    if json_path:
        report.write_json(json_path)
    if junit_path:
        report.write_junit(junit_path)
    if kind == "workspace":
        state = record_report(target, report)
        if state.recovered_from:
            warn(f"your state file was corrupt: set aside as {state.recovered_from}")
    return report.exit_code


@app.command("list")
def list_(phase: Annotated[str | None, typer.Argument(help="Only this phase.")] = None) -> None:
    """List phases and their checkpoints, with what each needs first."""
    from learn.manifest import load_manifest
    from learn.ui import show_checkpoints

    ids = [_phase(phase).id] if phase else []
    show_checkpoints(load_manifest(), ids)


@app.command()
def progress(workspace: WorkspaceOpt = None) -> None:
    """Show points per phase (now and best) and the next command to run."""
    from learn.manifest import load_manifest
    from learn.progress import next_step, summarise
    from learn.state import load_state
    from learn.ui import show_progress, warn
    from learn.workspace import command_for, resolve_workspace

    target = resolve_workspace(workspace)
    state = load_state(target)
    if state.recovered_from:
        warn(f"your state file was corrupt and was set aside as {state.recovered_from}")
    rows, retired = summarise(state, load_manifest())
    step = next_step(rows)
    command = command_for(step.args, target) if step.uses_workspace else f"learn {step.args}"
    show_progress(rows, retired, command, step.why)


@app.command()
def hint(checkpoint: Annotated[str, typer.Argument(help="Checkpoint id, e.g. 0.3.")]) -> None:
    """Show a checkpoint's hint, what it needs first, and where the book explains it."""
    from learn.book import DEFAULT_PORT, served_url
    from learn.manifest import load_manifest
    from learn.ui import show_hint
    from learn.workspace import command_for, resolve_workspace

    try:
        cp = load_manifest().checkpoint(checkpoint)
    except KeyError as exc:
        raise _usage_error(str(exc).strip('"')) from None
    doc, _, anchor = cp.book.partition("#")
    page = f"{doc}.html" + (f"#{anchor}" if anchor else "")
    url = served_url()
    if url:
        link = f"({url}{page})"
    else:
        link = (
            f"(not being served now: `learn book --serve` serves it on "
            f"http://127.0.0.1:{DEFAULT_PORT}/{page})"
        )
    show_hint(cp, link, command_for(f"check {cp.phase} -k {cp.id}", resolve_workspace()))


@app.command()
def doctor() -> None:
    """Check this machine: Python, packages, embedded PostgreSQL, GPU, disk; with fixes."""
    from learn.doctor import run_checks
    from learn.ui import console, show_doctor

    with console.status("checking ...") as status:
        results = list(run_checks(progress=lambda name: status.update(f"checking {name} ...")))
    raise typer.Exit(0 if show_doctor(results) else 1)


@app.command()
def book(
    serve: Annotated[bool, typer.Option(help="Serve the built book on loopback.")] = False,
    build: Annotated[bool, typer.Option(help="Build first (--no-build serves as is).")] = True,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
) -> None:
    """Build the book offline (notebooks executed) and optionally serve it."""
    from learn.book import BookBuildError, BookServeError, build_book, html_dir, serve_book
    from learn.ui import info

    try:
        out = build_book() if build else html_dir()
    except BookBuildError as exc:
        raise _usage_error(str(exc)) from None
    info(f"Book: {out / 'index.html'}")
    if serve:
        info(f"Serving on http://127.0.0.1:{port}/ (Ctrl-C stops it)")
        info(
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
    from learn.ui import info

    try:
        result = fork_project(project, dest)
    except ForkError as exc:
        raise _usage_error(str(exc)) from None
    info(f"[green]Forked[/] {project} into {result}")
    info(f"Next: cd {result} && make install && make test")


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
    from learn.template import TemplateError, stamp_template, template_dir
    from learn.ui import info
    from learn.workspace import resolve_workspace

    source = template_dir(REPO_ROOT if reference else resolve_workspace(workspace))
    if not source.is_dir():
        raise _usage_error(f"no template at {source}: run `learn start phase0` or use --reference")
    try:
        created = stamp_template(source, dest, name)
    except TemplateError as exc:
        raise _usage_error(str(exc)) from None
    info(f"[green]Created[/] {created}")
    info(f"Next: cd {created} && make install && make check")


@app.command()
def verify(
    phase: Annotated[str | None, typer.Argument(help="Only this phase.")] = None,
    requires: Annotated[
        bool,
        typer.Option(
            "--requires",
            help="Also prove each checkpoint's `requires` (one grading per checkpoint; slow).",
        ),
    ] = False,
) -> None:
    """Maintainers: the reference passes every checkpoint, a fresh scaffold none."""
    from learn.manifest import load_manifest
    from learn.ui import console, info, show_requires, show_verify, show_verify_total
    from learn.verify import verify_phase, verify_requires

    phases = [_phase(phase)] if phase else [p for p in load_manifest().phases if p.checkpoints]
    ok = True
    for chosen in phases:
        info(f"[bold]Verifying {chosen.id}[/] ...")
        outcome = verify_phase(chosen)
        show_verify(chosen.id, outcome)
        ok = ok and outcome.ok
        if requires:
            with console.status(f"{chosen.id}: proving requires ...") as status:
                label = f"{chosen.id}: only {{}} stripped"
                proof = verify_requires(
                    chosen, progress=lambda cid, f=label: status.update(f.format(cid))
                )
            show_requires(chosen.id, proof)
            ok = ok and proof.ok
    show_verify_total(ok)
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
