#!/usr/bin/env python3
"""Developer entry point: creates ./.venv on first use, then runs a sweep or the tests.

    python3 dev.py run [RUN OPTIONS]   # tuning-service run (default: the digits sweep)
    python3 dev.py test [PYTEST ARGS]  # the whole test suite (two test files at a time)
    python3 dev.py check               # ruff check, ruff format --check, mypy (what CI runs first)
    python3 dev.py shell               # print how to activate the environment

Needs only Python >= 3.11 with pip and venv. Re-installs when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-pyproject"


def ensure_venv() -> None:
    """Create the virtualenv and install the project (with test extras) when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file may run under an older python3
        sys.exit(f"error: Python >= 3.11 is needed, this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print(
        "installing tuning-service and its dependencies into .venv (first run takes a few minutes) ...",
        file=sys.stderr,
        flush=True,
    )
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"], check=True
    )
    STAMP.write_text(wanted)


# Lint, format and type checks; mypy reads its files and settings from pyproject.toml.
CHECKS = (("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",))


def check() -> int:
    """Run every check (all of them, even after one fails); non-zero when any failed."""
    failed = []
    for tool, *args in CHECKS:
        print(f"$ {tool} {' '.join(args)}", file=sys.stderr, flush=True)
        if subprocess.call([str(BIN / tool), *args], cwd=ROOT) != 0:
            failed.append(" ".join((tool, *args)))
    if failed:
        print(f"failed: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command not in ("run", "test", "check", "shell"):
        print(__doc__.strip())
        return 0 if command in ("help", "-h", "--help") else 2
    ensure_venv()
    if command == "shell":
        print(f"source {os.path.relpath(BIN / 'activate')}")
        return 0
    if command == "run":
        return subprocess.call([str(BIN / "tuning-service"), "run", *rest])
    if command == "check":
        return check()
    # pytest exits 5 when it collected no test: that is a failure here too.
    return subprocess.call([str(BIN / "python"), "-m", "pytest", *test_args(rest)], cwd=ROOT)


# Two pytest-xdist workers, each taking a whole test file at a time (a file's module-scoped
# fixtures, such as the resume test's killed sweeps, run once), in the order tests/conftest.py
# gives them (longest files first) rather than xdist's (most tests first). One test's waits (a
# driver or a cluster starting, a refused client's timeout) then overlap another's work. Not by
# test: pytest-xdist 3.8's "loadgroup", which would keep only the files that start Ray together,
# groups nothing under pytest 9.2 (it tags the node ids pytest no longer reads from the attribute
# it sets). For the tests without Ray, `-m "not integration" -n 2` shares them out one by one.
PARALLEL = ("-n", "2", "--dist", "loadfile", "--no-loadscope-reorder")


def test_args(args: list[str]) -> list[str]:
    """pytest's arguments: ``args``, run two files at a time unless they choose workers themselves
    (``-n``/``--numprocesses``, ``--dist``) or turn pytest-xdist off (``-p no:xdist``)."""
    chosen = any(
        a.startswith(("-n", "--numprocesses", "--dist")) or a in ("no:xdist", "-pno:xdist") for a in args
    )
    return args if chosen else [*PARALLEL, *args]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
