"""The dashboard cannot write, never creates a database, refuses bad input in one line, and asks for its token."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from dashdb import FINISHED_ID

from tuning_service.cli import main
from tuning_service.core.errors import InputError
from tuning_service.dashboard import create_app, open_read_only
from tuning_service.dashboard.auth import COOKIE, is_loopback, load_or_create_token


def _one_line_exit_2(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, (
        captured.err
    )
    return lines[0]


def test_nothing_can_be_written_through_the_dashboards_store(shared_url):
    from tuning_service.store import StoreError, open_store

    store = open_read_only(shared_url, "unused")
    try:
        with pytest.raises(StoreError, match="read-only|readonly"):
            store.finish_sweep(FINISHED_ID, "failed", "a bug in a page")
        with pytest.raises(StoreError, match="read-only|readonly"):
            store.record_epoch(FINISHED_ID, "t0", 9, mode="max", value=1.0)
    finally:
        store.close()
    with open_store(shared_url) as writable:
        (row,) = writable.sweeps(ids=[FINISHED_ID])
        assert row.status == "finished" and row.message is None
        assert [e.epoch for e in writable.epochs(FINISHED_ID, "t0")] == [1, 2, 3]


def test_a_missing_sqlite_file_is_refused_and_not_created(tmp_path, capsys):
    line = _one_line_exit_2(capsys, ["dashboard", "--storage", str(tmp_path / "results")])
    assert "no results database at" in line and "run a sweep first" in line
    assert not (tmp_path / "results").exists()


def test_an_empty_database_is_refused_and_left_empty(db_url, capsys):
    import sqlalchemy as sa

    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        sa.create_engine(db_url).connect().close()  # an empty SQLite file, as another program left it
        assert os.path.exists(path)
    line = _one_line_exit_2(capsys, ["dashboard", "--db", db_url])
    assert "holds no tuning-service results yet" in line
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []  # never created nor migrated
    engine.dispose()


def test_an_older_schema_is_refused_not_migrated(tmp_path, capsys):
    import sqlalchemy as sa

    from tuning_service.store import open_store

    url = f"sqlite:///{tmp_path / 'tuning.db'}"
    open_store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0003'"))
    line = _one_line_exit_2(capsys, ["dashboard", "--db", url])
    assert "has schema revision '0003', this dashboard reads" in line and "never migrates" in line
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0003"
    engine.dispose()


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ("mysql://tuner@db/tuning", "unsupported database 'mysql'"),
        ("postgresql://", "names no database"),
        ("sqlite://", "needs a file path"),
    ],
)
def test_a_bad_db_url_is_one_line_and_exit_2(db, expected, capsys):
    assert expected in _one_line_exit_2(capsys, ["dashboard", "--db", db])


def test_an_unreachable_server_is_one_line_without_its_password(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    line = _one_line_exit_2(
        capsys, ["dashboard", "--db", f"postgresql://tuner:s3cret@127.0.0.1:{port}/tuning"]
    )
    assert "cannot read database" in line and "s3cret" not in line and "***" in line


def test_a_port_in_use_is_one_line_and_exit_2(shared_url, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = _one_line_exit_2(capsys, ["dashboard", "--db", shared_url, "--port", str(port)])
    assert f"cannot listen on 127.0.0.1:{port}" in line and "choose another --port" in line


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("dashboard.internal", False)],
)  # fmt: skip
def test_only_loopback_goes_without_a_token(host, loopback):
    assert is_loopback(host) is loopback


def test_a_token_file_is_made_private_and_a_readable_one_refused(tmp_path):
    path = tmp_path / "config" / "dashboard_token"
    token = load_or_create_token(path)
    assert re.fullmatch(r"[0-9a-f]{64}", token) and os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_token(path) == token
    path.chmod(0o644)
    with pytest.raises(InputError, match=r"can be read by other users \(mode 0644\); run `chmod 600"):
        load_or_create_token(path)
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(InputError, match="is not a regular file"):
        load_or_create_token(link)


def test_without_the_token_every_page_is_401(shared_url):
    from starlette.testclient import TestClient

    token = "a" * 64
    store = open_read_only(shared_url, "unused")
    with TestClient(create_app(store, token=token)) as client:
        for path in ("/", f"/sweeps/{FINISHED_ID}", "/api/state", f"/sweeps/{FINISHED_ID}/export.json"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/static/dashboard.css").status_code == 200  # the login form needs it
        assert client.post("/login", data={"token": "wrong"}).status_code == 401
        assert client.get("/").status_code == 401
        logged_in = client.post("/login", data={"token": token}, follow_redirects=False)
        assert logged_in.status_code == 303 and token not in logged_in.headers["set-cookie"]
        assert (
            "HttpOnly" in logged_in.headers["set-cookie"]
            and "SameSite=strict" in logged_in.headers["set-cookie"]
        )
        assert client.cookies.get(COOKIE) and client.get("/").status_code == 200
    store.close()


@pytest.mark.integration
def test_the_command_says_it_asks_for_the_token_and_refuses_without_it(shared_url, tmp_path):
    """A real server: the one start line, then 401 without the token and 200 with it."""
    if not shared_url.startswith("sqlite"):
        pytest.skip("the server's start is the same on either database")
    token_file = tmp_path / "token"
    command = [sys.executable, "-m", "tuning_service", "dashboard", "--db", shared_url, "--port", "0"]
    server = subprocess.Popen(
        [*command, "--require-token", "--token-file", str(token_file)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stderr.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+/) ", line).group(1)
        assert (
            f"every request needs the token in {token_file}" in line
            and token_file.read_text().strip() not in line
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {token_file.read_text().strip()}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200 and FINISHED_ID in answer.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=20)
        server.stderr.close()


def test_no_page_shows_the_database_password(shared_url):
    """The test server trusts every client, so a password in the URL is accepted and must never show."""
    if not shared_url.startswith("postgresql"):
        pytest.skip("SQLite has no password")
    import sqlalchemy as sa
    from starlette.testclient import TestClient

    with_password = sa.make_url(shared_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    assert "s3cret-pw" in with_password
    store = open_read_only(with_password, "unused")
    paths = ["/", f"/sweeps/{FINISHED_ID}", "/jobs/digits", "/schedules", f"/compare?sweep={FINISHED_ID}"]
    paths += [f"/sweeps/{FINISHED_ID}/export.json", "/jobs/digits/export.csv", "/sweeps/nope", "/jobs/nope"]
    with TestClient(create_app(store)) as client:
        for path in paths:
            answer = client.get(path)
            assert "s3cret-pw" not in answer.text and "s3cret-pw" not in str(answer.headers), path
        assert ":***@" in client.get(f"/sweeps/{FINISHED_ID}/export.json").json()["database"]
    store.close()


def test_a_bad_schedule_file_is_one_line_and_exit_2_before_serving(tmp_path, capsys):
    bad = tmp_path / "sweeps.yaml"
    bad.write_text("sweeps:\n  nightly:\n    job: digits\n    cron: '61 * * * *'\n")
    line = _one_line_exit_2(capsys, ["dashboard", "--schedule", str(bad), "--db", "sqlite:///nowhere.db"])
    assert "sweeps.yaml:4: sweeps.nightly.cron:" in line, line
    missing = _one_line_exit_2(capsys, ["dashboard", "--schedule", str(tmp_path / "none.yaml")])
    assert "none.yaml' does not exist" in missing
