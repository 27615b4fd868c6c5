"""The two-node Ray cluster on 127.0.0.1 (head + worker, 1 CPU each, token auth) for these tests.

It starts for the first test that asks for it and stops as soon as the next test is
not one of this directory's, so the rest of the suite never shares 2 cores with it;
in any test order it starts again when needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clusterkit import ROOT, LocalCluster

from tuning_service.testing.localcluster import ClusterError

HERE = Path(__file__).parent
_running: dict[str, LocalCluster] = {}


def start_cluster() -> LocalCluster:
    try:
        return LocalCluster.start(ROOT)
    except ClusterError as exc:
        pytest.fail(str(exc))


def stop_cluster(cluster: LocalCluster) -> None:
    """Stop the worker, then the head; every process they started, and nothing else."""
    problems = cluster.stop()
    assert not problems, problems


@pytest.fixture
def local_cluster() -> LocalCluster:
    """The running test cluster, started on first use."""
    if "cluster" not in _running:
        _running["cluster"] = start_cluster()
    return _running["cluster"]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if "cluster" in _running and (nextitem is None or HERE not in Path(nextitem.path).parents):
        stop_cluster(_running.pop("cluster"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if "cluster" in _running:  # interrupted: still stop what was started
        stop_cluster(_running.pop("cluster"))
