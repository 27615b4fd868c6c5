"""Joining through Ray Client: a server that died starting is tried again, nothing else is."""

from __future__ import annotations

import logging

import pytest

from tuning_service.raytune import raysession

# What a client is told when the server Ray forked for it died (ray-project/ray#63202): the
# proxier's own check, and the traceback where the fork was already a zombie when it looked.
DIED = (
    "Initialization failure from server:\nRuntimeError: Starting Ray client server failed. "
    "See ray_client_server_23000.err for detailed logs.",
    'Initialization failure from server:\n  File "proxier.py", line 396, in start_specific_server\n'
    "psutil.ZombieProcess: PID still exists but it's a zombie (pid=10588)",
)


class Flaky:
    """Fails with the given errors, in turn, then connects."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "connected"


@pytest.mark.parametrize("text", DIED)
def test_a_client_server_that_died_starting_is_connected_to_again(text, caplog):
    connect = Flaky(ConnectionAbortedError(text), ConnectionAbortedError(text))
    with caplog.at_level(logging.WARNING, logger=raysession.__name__):
        assert raysession.connect_client(connect, "ray://head:10001") == "connected"
    assert connect.calls == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"the Ray Client at ray://head:10001 could not start its server for this client (attempt {n} of 3); "
        "connecting again"
        for n in (1, 2)
    ]


def test_it_gives_up_after_three_attempts_with_rays_error():
    connect = Flaky(*(ConnectionAbortedError(DIED[0]) for _ in range(4)))
    with pytest.raises(ConnectionAbortedError, match="Starting Ray client server failed"):
        raysession.connect_client(connect, "ray://head:10001")
    assert connect.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("ray client connection timeout"),  # how a client without the token is refused
        ValueError("Starting Ray client server failed"),  # not a connection error: a bug to see at once
    ],
)
def test_any_other_failure_is_raised_at_once(error):
    connect = Flaky(error)
    with pytest.raises(type(error)):
        raysession.connect_client(connect, "ray://head:10001")
    assert connect.calls == 1
