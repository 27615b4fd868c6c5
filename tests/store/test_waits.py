"""No wait on PostgreSQL without a deadline: statements are bounded, a vanished server is noticed."""

from __future__ import annotations

import os
import socket
import time

import pytest
import sqlalchemy as sa
from storedbs import make_db_url

from tuning_service.core.errors import InputError
from tuning_service.store import open_store


@pytest.fixture
def pg_url(tmp_path):
    yield from make_db_url("postgresql", tmp_path)


def test_a_statement_that_waits_too_long_is_cancelled(pg_url, monkeypatch):
    """Before: a statement waiting on a lock that a stuck client holds waited for ever."""
    monkeypatch.setenv("TUNING_SERVICE_DB_STATEMENT_TIMEOUT_S", "1")
    with open_store(pg_url) as store, store.engine.connect() as conn:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="canceling statement due to statement timeout"):
            conn.execute(sa.text("SELECT pg_sleep(60)"))
        assert time.monotonic() - started < 30  # cancelled after 1 s, not after the minute


def test_connections_send_tcp_keepalives(pg_url):
    """Before: a server that vanished without closing the connection left a read blocked for hours."""
    with open_store(pg_url) as store, store.engine.connect() as conn:
        fd = conn.connection.driver_connection.pgconn.socket
        probe = socket.socket(fileno=os.dup(fd))
        try:
            assert probe.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000
        finally:
            probe.close()


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan"])
def test_a_bad_statement_timeout_is_one_line_naming_the_variable(pg_url, monkeypatch, value):
    monkeypatch.setenv("TUNING_SERVICE_DB_STATEMENT_TIMEOUT_S", value)
    with pytest.raises(
        InputError,
        match=f"TUNING_SERVICE_DB_STATEMENT_TIMEOUT_S must be a number of seconds > 0, got '{value}'",
    ):
        open_store(pg_url)
