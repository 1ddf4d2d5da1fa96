"""`learn doctor`: real checks of this machine, each failure with a fix."""

from typer.testing import CliRunner

from learn import doctor
from learn.cli import app


def test_embedded_postgres_starts_with_pgvector():
    result = doctor.check_postgres()
    assert result.ok, result.detail
    assert "pgvector" in result.detail


def test_every_failing_required_check_offers_a_fix(monkeypatch):
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: None)
    results = list(doctor.check_packages())
    assert results and all(not r.ok and r.fix for r in results)


def test_wrong_pandas_major_is_reported(monkeypatch):
    monkeypatch.setattr(doctor.importlib.metadata, "version", lambda dist: "3.0.0")
    pandas = next(r for r in doctor.check_packages() if r.name == "package pandas")
    assert not pandas.ok and "pandas<3" in pandas.fix


def test_doctor_command_passes_here_and_lists_each_check():
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    for name in ("Python", "package numpy", "embedded PostgreSQL", "GPU", "free disk"):
        assert name in result.output


def test_doctor_exits_1_when_a_required_check_fails(monkeypatch):
    monkeypatch.setattr(doctor, "MIN_FREE_GIB", 10**9)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "fix:" in result.output
