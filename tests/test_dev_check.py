"""`python3 dev.py check` and `test`: CI's lint, format and type checks, each run even after one
fails, and the test suite's workers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """dev.py pointed at a small project in tmp_path, with this interpreter's ruff and mypy."""
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "BIN", Path(sys.executable).parent)
    (tmp_path / "pyproject.toml").write_text('[tool.mypy]\nfiles = ["pkg"]\n')
    (tmp_path / "pkg").mkdir()
    return module


def test_check_passes_a_clean_project(dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pkg" / "__init__.py").write_text('"""A clean module."""\n\nANSWER: int = 42\n')
    assert dev.check() == 0
    assert "failed" not in capsys.readouterr().err


def test_check_runs_every_check_and_names_the_failed_ones(
    dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A type error mypy reports, and an unused import ruff check reports; the format is fine.
    (tmp_path / "pkg" / "__init__.py").write_text(
        '"""A broken module."""\n\nimport os\n\nANSWER: int = "42"\n'
    )
    assert dev.check() == 1
    assert capsys.readouterr().err.splitlines()[-1] == "failed: ruff check .; mypy"


def test_the_suite_runs_two_files_at_a_time_unless_told_otherwise(dev) -> None:
    default = dev.test_args([])
    # Two workers, a whole file to each, in the order tests/conftest.py gives the files.
    assert default[default.index("-n") + 1] == "2" and default[default.index("--dist") + 1] == "loadfile"
    assert "--no-loadscope-reorder" in default
    assert dev.test_args(["tests/core", "-x"])[-2:] == ["tests/core", "-x"]
    assert dev.test_args(["tests/core"])[:2] == ["-n", "2"]
    # The caller's own choice of workers, or of none, is kept as it is.
    for args in (
        ["-m", "not integration", "-n", "2"],
        ["-n0"],
        ["--numprocesses=4"],
        ["-p", "no:xdist"],
        ["-pno:xdist"],
    ):
        assert dev.test_args(args) == args
