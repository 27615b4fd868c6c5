"""Test session setup: environment before any Ray/Keras import, and one shared local Ray."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from types import SimpleNamespace
from typing import Any

# Set before Keras, TensorFlow or Ray is imported anywhere in the session.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
# No worker fork server outlives its sweep (`raytune.workerkeep`): the suite leaves no process
# behind. The tests of kept servers turn it back on and stop theirs.
os.environ["TUNING_SERVICE_WORKERS_KEEP_S"] = "0"
# Keras' dataset cache, where the digits job keeps its split: a folder of the session's (shared
# with the sweeps it starts), not the user's home; removed by the process that made it.
if "KERAS_HOME" not in os.environ:
    os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="tuning-service-tests-keras-")
    atexit.register(shutil.rmtree, os.environ["KERAS_HOME"], ignore_errors=True)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One embedded Ray for every integration test (starting Ray costs seconds), started as a
    sweep's is (`embedded.init_embedded`): never a cluster already running on this machine."""
    from tuning_service.raytune.embedded import init_embedded, shutdown_embedded
    from tuning_service.raytune.raysession import prepare_environment

    prepare_environment(None)
    import ray

    # Its Keras trials' workers are forked as a sweep's are (`workerfork`).
    log = tmp_path_factory.mktemp("ray") / "ray.log"
    _, head, after = init_embedded(
        num_cpus=2, trial_slots=2, worker_log=log, log_to_driver=False, configure_logging=False
    )
    try:
        yield ray
    finally:
        with after:
            shutdown_embedded(head)


# Where Ray puts its session folders; under a file, no Ray can start.
_RAY_TMPDIR = "RAY_TMPDIR"
_NO_RAY = os.path.join(os.devnull, "integration-tests-only")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test without the `integration` marker cannot start Ray, in this process or in a child,
    from the test or from any fixture it sets up: Ray's session folder would go under a file.
    So `-m "not integration"` starts no Ray, as README says, and a test that starts one without
    the marker fails at once instead of slowing that run down."""
    if item.get_closest_marker("integration") is not None:
        yield
        return
    from tuning_service.core.envvars import env_restored

    with env_restored(_RAY_TMPDIR):
        os.environ[_RAY_TMPDIR] = _NO_RAY
        yield


@pytest.hookimpl(trylast=True)  # after `-m`/`-k` deselect: order only the tests that will run
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`dev.py test` runs two workers, each taking whole files), the files
    with the longest tests go first: those with a `slow` test, then those that start Ray, then
    the rest. Each worker takes the next file when it finishes one, so the many short files fill
    the end of the run instead of one long file running alone there. Stable: the order within
    each kind is pytest's; every worker sorts the same collection the same way."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return

    def kind(item) -> int:
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("integration") else 2

    first: dict[object, int] = {}
    for item in items:
        first[item.path] = min(first.get(item.path, 2), kind(item))
    items.sort(key=lambda item: first[item.path])


@pytest.fixture
def storage(tmp_path):
    """A results root that does not exist yet."""
    return tmp_path / "results"


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts connections and never answers (a firewall, a stuck server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # accepted, never answered
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def offline(monkeypatch):
    """No download is tried: image tests never reach for the network."""
    monkeypatch.setenv("TUNING_SERVICE_OFFLINE", "1")


@pytest.fixture
def tiny_files() -> SimpleNamespace:
    """The writers of tinyfiles.py, for tests (a fixture, so no test imports a helper by path)."""
    from tinyfiles import IMAGES, write_cifar10, write_fashion, write_mnist, write_table

    return SimpleNamespace(
        images=IMAGES, mnist=write_mnist, fashion=write_fashion, cifar10=write_cifar10, table=write_table
    )


@pytest.fixture
def run_script():
    """``run_script(script, *args, timeout=180, env=None)``: run a Python script in a new process
    (where the test session's own Ray would not be reused), check that it exited 0, and return
    what the last line it printed holds, as JSON."""

    def run(script: str, *args: object, timeout: float = 180, env: dict[str, str] | None = None) -> Any:
        done = subprocess.run(
            [sys.executable, "-c", script, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run
