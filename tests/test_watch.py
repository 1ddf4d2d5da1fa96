"""`learn check --watch`: a saved file triggers a new grade (polling, as in container mounts)."""

import os
import signal
import subprocess
import time
from pathlib import Path

from support import learn_command

from learn.watch import relevant


def test_relevant_ignores_caches_and_state():
    assert relevant("/ws/phases/phase0/sysdesign/latency.py")
    assert relevant("/ws/phases/phase0/repo_template/Makefile")
    assert not relevant("/ws/phases/phase0/sysdesign/__pycache__/latency.cpython-311.pyc")
    assert not relevant("/ws/.learn/state.json")


def _wait_for(path: Path, text: str, count: int, deadline: float) -> str:
    while time.monotonic() < deadline:
        out = path.read_text(errors="replace")
        if out.count(text) >= count:
            return out
        time.sleep(0.2)
    raise AssertionError(f"{text!r} seen fewer than {count} times:\n{path.read_text()}")


def test_watch_regrades_after_a_change(tmp_path, reference_workspace):
    ws = reference_workspace
    log = tmp_path / "watch.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            learn_command(
                "check", "phase0", "--workspace", str(ws), "-k", "0.1", "--watch", "--poll"
            ),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
            start_new_session=True,
            # SIGINT back to its default: a shell running the suite in the background hands
            # its children SIGINT ignored, and the watcher would never see the Ctrl-C below.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 120
        _wait_for(log, "Total: 10/10", 1, deadline)
        _wait_for(log, "Watching", 1, deadline)
        latency = ws / "phases" / "phase0" / "sysdesign" / "latency.py"
        with open(latency, "a") as edit:  # break the graded function
            edit.write("\n\ndef percentile(samples, q):\n    return 0.0\n")
        out = _wait_for(log, "Total: ", 2, deadline)
        assert "changed: latency.py" in out
        assert "Total: 0/10" in out
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
