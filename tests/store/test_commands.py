"""results, export, compare and refit on made-up records (no Ray): output, and every bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
import yaml
from storedbs import BACKENDS, make_db_url
from storefakes import add_sweep

from tuning_service.cli import main
from tuning_service.store import open_store, schema
from tuning_service.sweeps.aggregate import best_config


@pytest.fixture(scope="module", params=BACKENDS)
def filled(request, tmp_path_factory):
    """Two digits sweeps, one pima_diabetes sweep, and a digits sweep where nothing finished.

    Shared by the module's tests: they only read, or prove that they wrote nothing.
    """
    sweep_dir = tmp_path_factory.mktemp("sweeps")
    urls = make_db_url(request.param, tmp_path_factory.mktemp("db"))
    db_url = next(urls)
    request.addfinalizer(lambda: next(urls, None))
    with open_store(db_url) as store:
        add_sweep(store, "s1", trials={"a": ("completed", [0.5, 0.6]), "b": ("stopped early", [0.8])})
        add_sweep(store, "s2", trials={"c": ("completed", [0.7, 0.9]), "d": ("errored", [0.3])})
        add_sweep(store, "s3", job="pima_diabetes", trials={"e": ("completed", [0.75])})
        add_sweep(
            store,
            "allfailed",
            trials={"f": ("errored", [0.99]), "g": ("diverged", [None])},
            finish="failed",
            sweep_dir=str(sweep_dir),
        )
    return db_url


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _counts(url: str) -> dict[str, int]:
    with open_store(url) as store, store.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in schema.metadata.sorted_tables
        }


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "tuning.db" not in p.name)


def test_results_ranks_trials_across_sweeps_per_job(filled, capsys):
    code, out, _ = _run(capsys, "results", "--db", filled)
    assert code == 0
    digits = out.index("digits - top 3 of 6 trials across 3 sweeps")
    assert out.index("pima_diabetes - top 1") > digits
    board = out[digits : out.index("pima_diabetes - top")]
    assert board.index("0.9000") < board.index("0.8000") < board.index("0.6000")
    assert "allfailed" in out and "1 diverged, 1 errored" in out


def test_results_of_one_sweep_lists_every_trial_with_its_error(filled, capsys):
    code, out, _ = _run(capsys, "results", "--db", filled, "--sweep", "s2")
    assert code == 0 and "errored: ValueError: boom" in out and out.index("0.9000") < out.index("errored")


def test_results_json(filled, capsys):
    code, out, _ = _run(
        capsys, "results", "--db", filled, "--format", "json", "--job", "digits", "--top", "2"
    )
    data = json.loads(out)
    assert [r["trial_id"] for r in data["leaderboards"]["digits"]] == ["c", "b"]
    assert {s["sweep_id"] for s in data["sweeps"]} == {"s1", "s2", "allfailed"}


@pytest.mark.parametrize("fmt", ["json", "yaml", "csv"])
def test_export_writes_the_best_config_per_job_with_provenance(filled, capsys, tmp_path, fmt):
    target = tmp_path / f"best.{fmt}"
    code, _, err = _run(capsys, "export", "--db", filled, "--format", fmt, "-o", str(target))
    assert code == 0 and "wrote 2 configs" in err
    text = target.read_text()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["job"], r["sweep_id"], r["trial_id"]) for r in rows] == [
            ("digits", "s2", "c"),
            ("pima_diabetes", "s3", "e"),
        ]
        assert (
            rows[0]["config.units"] == "16"
            and rows[0]["versions.keras"] == "3"
            and rows[0]["metric"] == "val_accuracy"
        )
        assert rows[0]["value"] == "0.9" and rows[0]["date"].startswith("20")
        return
    document = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    first = document["configs"][0]
    assert (first["job"], first["sweep_id"], first["value"], first["epoch"]) == ("digits", "s2", 0.9, 2)
    assert first["config"] == {"learning_rate": 0.001, "units": 16}
    assert first["versions"] == {"tuning-service": "0.1.0", "keras": "3"} and first["date"]
    assert document["exported_at"] and document["database"]


def test_export_top_k_of_one_job_to_stdout(filled, capsys):
    code, out, _ = _run(capsys, "export", "--db", filled, "--job", "digits", "--top", "2")
    assert code == 0
    assert [(c["rank"], c["trial_id"]) for c in json.loads(out)["configs"]] == [(1, "c"), (2, "b")]


def test_best_config_python_api(filled):
    record = best_config("digits", db=filled)
    assert (record["sweep_id"], record["trial_id"], record["value"]) == ("s2", "c", 0.9)


def test_compare_two_sweeps_side_by_side(filled, capsys):
    code, out, _ = _run(capsys, "compare", "s1", "s2", "--db", filled)
    assert code == 0
    for text in ("s1 vs s2", "0.8000", "0.9000", "epochs spent", "2 (1 completed, 1 stopped early)"):
        assert text in out
    code, out, _ = _run(capsys, "compare", "s1", "s2", "--db", filled, "--format", "json")
    first, second = json.loads(out)
    assert (first["epochs"], second["epochs"], second["best"]["trial_id"]) == (3, 3, "c")


BAD_INPUTS = [
    (["results", "--sweep", "nope"], "unknown sweep 'nope' in"),
    (["results", "--job", "nojob"], "no sweep of job 'nojob' in"),
    (
        ["results", "--sweep", "s3", "--job", "digits"],
        "sweep s3 is a sweep of job 'pima_diabetes', not 'digits'",
    ),
    (["results", "--top", "0"], "--top must be an integer >= 1, got 0"),
    (["export", "--job", "nojob"], "no sweep of job 'nojob' in"),
    (["export", "--top", "0"], "--top must be an integer >= 1, got 0"),
    (
        ["export", "-o", "{tmp}/missing/out.json"],
        "cannot write export to '{tmp}/missing/out.json': directory",
    ),
    (["export", "-o", "{tmp}/afile/out.json"], "is not a directory"),
    (["export", "-o", "{tmp}"], "cannot write export to '{tmp}': it is a directory"),
    (["compare", "s1", "nope"], "unknown sweep 'nope' in"),
    (["refit", "nope"], "unknown sweep 'nope' in"),
    (["refit", "--job", "nojob"], "no sweep of job 'nojob' in"),
    (["refit", "allfailed"], "sweep allfailed has no completed trial to refit (1 diverged, 1 errored)"),
    (["refit"], "give a SWEEP or --job JOB (one of them)"),
    (["refit", "s1", "--job", "digits"], "give a SWEEP or --job JOB (one of them)"),
    (["refit", "s1", "-o", "{tmp}/model.h5"], "--output must end in .keras"),
    (["refit", "s1", "-o", "{tmp}/missing/model.keras"], "directory '{tmp}/missing' does not exist"),
]


@pytest.mark.parametrize(
    ("argv", "message"), BAD_INPUTS, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(filled, capsys, tmp_path, argv, message):
    (tmp_path / "afile").write_text("")
    before, files = _counts(filled), _files(tmp_path)
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = _run(capsys, *argv[:1], "--db", filled, *argv[1:])
    assert code == 2, err
    assert err.startswith("error: ") and message.format(tmp=tmp_path) in err and err.count("\n") == 1
    assert out == ""
    assert _counts(filled) == before and _files(tmp_path) == files


def test_a_failed_export_leaves_the_previous_file_whole(filled, capsys, tmp_path, monkeypatch):
    target = tmp_path / "best.json"
    target.write_text("previous export\n")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    code, _, err = _run(capsys, "export", "--db", filled, "-o", str(target))
    assert code == 2 and "cannot write export to" in err and "No space left on device" in err
    assert target.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".best")] == []


# -- database URLs ---------------------------------------------------------------------------------


# Bound and never listening: a connection is refused at once, and no other process on the
# machine can take the port while the test runs (a port merely closed again could be).
_HELD: list[socket.socket] = []


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


URL_ERRORS = [
    ("not a url", "database URL 'not a url' is malformed; use sqlite:///PATH or postgresql://"),
    ("mysql://u@127.0.0.1/db", "database URL 'mysql://u@127.0.0.1/db': unsupported database 'mysql'"),
    ("postgresql://u@127.0.0.1:port/db", "database URL 'postgresql://u@127.0.0.1:port/db' is malformed"),
    ("postgresql://u@127.0.0.1:5432", "names no database"),
    ("sqlite://", "needs a file path"),
    (
        "postgresql://u:secret@127.0.0.1:{port}/db",
        "cannot connect to database 'postgresql+psycopg://u:***@127.0.0.1:{port}/db'",
    ),
]


@pytest.mark.parametrize("command", ["results", "export", "compare s1 s2", "refit s1"])
@pytest.mark.parametrize(("url", "message"), URL_ERRORS)
def test_a_bad_database_url_is_one_line_and_exit_2(capsys, tmp_path, command, url, message):
    port = _closed_port()
    url, message = url.format(port=port), message.format(port=port)
    started = time.monotonic()
    code, out, err = _run(capsys, *command.split(), "--db", url, "--storage", str(tmp_path / "r"))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert "secret" not in err
    assert time.monotonic() - started < 5
    assert list(tmp_path.iterdir()) == []


def test_run_refuses_a_bad_database_before_ray_starts_and_creates_nothing(capsys, tmp_path):
    storage = tmp_path / "results"
    for url, message in [
        ("not a url", "--db: database URL 'not a url' is malformed"),
        (f"postgresql://u@127.0.0.1:{_closed_port()}/db", "cannot connect to database"),
        (f"sqlite:///{tmp_path}/afile/x.db", "cannot be created"),
    ]:
        (tmp_path / "afile").write_text("")
        code, _, err = _run(capsys, "run", "--db", url, "--storage", str(storage))
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert not storage.exists()


def test_reading_commands_never_create_the_default_database(capsys, tmp_path):
    storage = tmp_path / "results"
    code, _, err = _run(capsys, "results", "--storage", str(storage))
    assert code == 2 and f"no results database at '{storage}/tuning.db'; run a sweep first" in err
    assert not storage.exists()


def test_a_server_that_never_answers_fails_within_seconds(capsys, tmp_path, silent_port, monkeypatch):
    """A firewall that drops packets looks like this: the connect timeout, not a hang."""
    from tuning_service.store import engine

    # The command waits as long as the store's timeout says: 2 s here (libpq's least) rather
    # than the default's 5, which would only make the test wait longer.
    timeout_s = 2
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", timeout_s)
    url = f"postgresql://u@127.0.0.1:{silent_port}/db"
    started = time.monotonic()
    code, _, err = _run(capsys, "results", "--db", url)
    elapsed = time.monotonic() - started
    assert code == 2 and "cannot connect to database" in err and "timeout" in err.lower(), err
    assert timeout_s - 1 <= elapsed < timeout_s + 5


def test_the_reading_commands_load_neither_numpy_nor_alembic(filled, tmp_path):
    # As commands, `results` and `export` take about as long to import as to answer: NumPy and
    # Alembic's migration runtime were a third of a second each, and neither is needed to read.
    script = (
        "import sys\n"
        "from tuning_service.cli import main\n"
        "codes = [main(['results']), main(['export', '--output', sys.argv[1]])]\n"
        "print('ran', codes, sorted(m for m in ('numpy', 'alembic') if m in sys.modules))\n"
    )
    env = {**os.environ, "TUNING_SERVICE_DB": filled}  # the URL in no process's arguments
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "best.json")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "ran [0, 0] []", done.stderr
    assert json.loads((tmp_path / "best.json").read_text())
