"""The `learn` CLI's contract: exit codes, clear usage errors, a light start-up path."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from learn import REPO_ROOT
from learn.cli import app

runner = CliRunner()


def flat(result) -> str:
    """The command's output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "start",
        "check",
        "list",
        "progress",
        "hint",
        "doctor",
        "book",
        "fork",
        "verify",
        "new-repo",
    ):
        assert command in flat(result)


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys, learn.cli\n"
        "heavy = {'numpy', 'pandas', 'matplotlib', 'pytest', 'yaml', 'torch', 'sphinx'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "phase9"], "unknown phase"),
        (["start", "phase9"], "unknown phase"),
        (["hint", "9.9"], "unknown checkpoint"),
        (["check", "phase0", "--reference", "--workspace", "/tmp"], "either"),
        (["check", "phase0", "--reference", "-k", "5.5"], "not in phase0"),
        (["check", "phase4"], "no checkpoints yet"),
        (["fork", "nope", "/tmp/x"], "unknown project"),
        (["check", "phase0", "--workspace", str(REPO_ROOT)], "use --reference"),
        (["check", "phase0", "--reference", "--timeout", "0"], "Invalid value for '--timeout'"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in flat(result)


def test_check_on_a_missing_workspace_says_to_start(tmp_path):
    result = runner.invoke(app, ["check", "phase0", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert "learn start phase0" in flat(result)


def test_hint_shows_hint_and_book_section():
    result = runner.invoke(app, ["hint", "0.1"])
    assert result.exit_code == 0
    assert "Hint:" in flat(result) and "phase0/" in flat(result)


def test_list_shows_phases_and_checkpoints():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "phase5" in flat(result) and "0.1" in flat(result)


def test_start_then_progress(tmp_path):
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["start", "phase0", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert "learn check phase0" in flat(result)
    result = runner.invoke(app, ["progress", "--workspace", str(ws)])
    assert result.exit_code == 0
    assert "Next: learn check phase0" in flat(result)


def test_progress_with_a_corrupt_state_file_warns_and_keeps_it(tmp_path):
    (tmp_path / ".learn").mkdir()
    (tmp_path / ".learn" / "state.json").write_text("{broken")
    result = runner.invoke(app, ["progress", "--workspace", str(tmp_path)])
    assert result.exit_code == 0
    assert "corrupt" in flat(result)
    assert list((tmp_path / ".learn").glob("state.json.corrupt-*"))


def test_fork_of_a_project_not_landed_yet_is_explained(tmp_path):
    from learn.manifest import load_manifest

    missing = [p for p in load_manifest().projects if not p.exists()]
    if not missing:
        pytest.skip("every project has landed")
    result = runner.invoke(app, ["fork", missing[0].id, str(tmp_path / "f")])
    assert result.exit_code == 2
    assert "has not landed" in flat(result)
    assert not (tmp_path / "f").exists()


def test_check_reference_json_report_validates_against_schema(tmp_path):
    import jsonschema

    from learn import REPO_ROOT

    out = tmp_path / "r.json"
    junit = tmp_path / "r.xml"
    result = runner.invoke(
        app,
        ["check", "phase0", "--reference", "-k", "0.1", "--json", str(out), "--junit", str(junit)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    schema = json.loads((REPO_ROOT / "learn" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["target_kind"] == "reference" and report["passed"] is True
    assert [c["id"] for c in report["checkpoints"]] == ["0.1"]

    from xml.etree import ElementTree as ET

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "1" and suite.get("failures") == "0"


def test_hint_links_to_the_port_the_book_is_served_on(tmp_path, monkeypatch):
    """`learn book --serve --port N` records where it serves; `learn hint` links there."""
    import signal
    import textwrap
    import time

    import learn.book

    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text("<html>book</html>")
    record = tmp_path / "serving.json"
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from learn.book import serve_book
        serve_book(Path({str(html)!r}), port=0, record=Path({str(record)!r}))
        """
    )
    # SIGINT back to its default in the child: a shell that starts the suite in the background
    # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt.
    server = subprocess.Popen(
        [sys.executable, "-c", code],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while not record.exists():
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.05)
        url = learn.book.served_url(record)
        assert url and url.startswith("http://127.0.0.1:") and not url.endswith(":8000/")
        monkeypatch.setattr(learn.book, "SERVING_RECORD", record)
        result = runner.invoke(app, ["hint", "0.4"])
        assert f"{url}phase0/slos.html" in flat(result), flat(result)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    assert not record.exists(), "the record goes with the server"
    assert learn.book.served_url(record) is None
    result = runner.invoke(app, ["hint", "0.4"])
    assert "not being served now" in flat(result) and ":8000/phase0/slos.html" in flat(result)


def test_text_with_brackets_is_printed_as_written():
    """A hint or message like `[y == k]` or `[/x]` is text, not Rich markup."""
    from learn import ui
    from learn.manifest import Checkpoint

    cp = Checkpoint("9.1", "Odd [title]", 5, "p_k - [y == k], then [/bold]", "b", "phase9", 20)
    with ui.console.capture() as captured:
        ui.show_hint(cp, "(link)", "learn check phase9 -k 9.1")
    text = captured.get()
    assert "p_k - [y == k], then [/bold]" in text and "Odd [title]" in text
    with ui.err_console.capture() as captured:
        ui.error("bad [/oops] input")
    assert "bad [/oops] input" in captured.get()
