"""The embedded Ray's workers are forks of one process that has imported TensorFlow (`workerfork`),
started through the shim the raylet runs (`workershim`); without the server, Ray's own worker.
A server kept between sweeps (`workerkeep`) is held by each sweep in turn, ends once idle, is
replaced where a file it imported changed, and keeps none of a sweep's secrets; for a sweep
started as the last one was, its Ray stage (`workerstage`) forks the workers with Ray imported."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tuning_service.core.errors import InputError
from tuning_service.raytune import workerfork, workerkeep, workershim, workerstage
from tuning_service.raytune.workerfork import SWITCH_ENV, fork_server, forking_chosen
from tuning_service.raytune.workerkeep import KEEP_ENV, keep_seconds, kept_fork_server

SHIM = workershim.__file__
# Stands in for Ray's worker script: says where and how it runs, then sleeps or exits.
WORKER = r"""
import json, os, sys, time
if "tune" in sys.argv[2:]:  # as a trial's worker imports Ray Tune, which Ray's own script does not
    import ray.tune
print(json.dumps({
    "pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv[1:], "cwd": os.getcwd(),
    "marker": os.environ.get("MARKER"), "own_group": os.getpgid(0) == os.getpid(),
    "tensorflow": "tensorflow" in sys.modules, "ray": "ray" in sys.modules,
    "frozen": __import__("gc").get_freeze_count(), "tune": "ray.tune" in sys.modules,
    "ray_data": type(sys.modules.get("ray.data")).__name__, "pandas": type(sys.modules.get("pandas")).__name__,
    "tf_lite": type(sys.modules.get("tensorflow._api.v2.lite")).__name__,
    "tf_lite_code": any(name.startswith("tensorflow.lite") for name in sys.modules),
}), flush=True)
if sys.argv[1] == "sleep":
    time.sleep(120)
sys.exit(int(sys.argv[1]))
"""


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat")
        try:
            if stat.read_text().rpartition(")")[2].split()[0] == "Z":  # ended, not yet reaped
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def _handled(pid: int, signum: int, within: float) -> bool:
    """Whether process ``pid`` (one thread) took signal ``signum`` and is asleep again within
    ``within`` seconds: Python runs its handler as the signal wakes the process, before it sleeps
    again (read from /proc: the signal no longer pending, the process sleeping)."""
    bit = 1 << (signum - 1)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        pending = int(status["SigPnd"], 16) | int(status["ShdPnd"], 16)
        if not pending & bit and status["State"].split()[0] == "S":
            return True
        time.sleep(0.005)
    return False


def _shim(env: dict[str, str], worker: Path, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, SHIM, *args],
        env={**os.environ, **env, workershim.RAY_WORKER_ENV: str(worker), "MARKER": "from the shim"},
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_shim_without_its_fork_server_becomes_rays_worker(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    for env in ({workershim.SOCKET_ENV: str(tmp_path / "no-server" / "socket")}, {}):
        shim = _shim(env, worker, tmp_path, "3", "an argument")
        out, _ = shim.communicate(timeout=30)
        seen = json.loads(out)
        assert shim.returncode == 3
        assert seen["pid"] == shim.pid  # the shim's own process, replaced by the worker's script
        assert seen["argv"] == ["3", "an argument"] and seen["marker"] == "from the shim"


def test_the_switch_is_checked(monkeypatch):
    monkeypatch.setenv(SWITCH_ENV, "0")
    assert forking_chosen() is False
    monkeypatch.setenv(SWITCH_ENV, "1")
    assert forking_chosen() is True
    monkeypatch.delenv(SWITCH_ENV)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert forking_chosen() is False  # by default on Linux only
    monkeypatch.setattr(sys, "platform", "linux")
    assert forking_chosen() is True
    monkeypatch.setenv(SWITCH_ENV, "yes")
    with pytest.raises(InputError, match="TUNING_SERVICE_WORKER_FORK must be 1 .* or 0 .*not 'yes'"):
        forking_chosen()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with fork_server(tmp_path_factory.mktemp("fork") / "server.log") as running:
        yield running


@pytest.mark.integration
def test_a_worker_is_a_fork_of_the_server_with_the_shims_arguments_and_environment(server, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    shim = _shim(server.env, worker, tmp_path, "3", "an argument")
    out, _ = shim.communicate(timeout=120)
    seen = json.loads(out)  # written to the shim's own standard output
    assert shim.returncode == 3  # the worker's exit status
    assert seen["ppid"] == server.pid and seen["pid"] != shim.pid
    assert seen["argv"] == ["3", "an argument"] and seen["cwd"] == str(tmp_path)
    assert seen["marker"] == "from the shim" and seen["own_group"]
    # TensorFlow came with the fork; Ray, which reads the worker's job as it loads, did not;
    # nor did pandas, which Keras would have loaded for its DataFrames, nor TF Lite's code.
    assert seen["tensorflow"] and not seen["ray"] and seen["pandas"] == "NoneType"
    assert seen["tf_lite"] == "DeferredModule" and not seen["tf_lite_code"]
    # The server's imports are out of the collector's reach: a fork's passes skip them.
    assert seen["frozen"] > 100_000, seen["frozen"]
    # The worker's Ray Tune, imported in the fork, runs neither Ray Data's code nor pandas'.
    shim = _shim(server.env, worker, tmp_path, "0", "tune")
    out, _ = shim.communicate(timeout=120)
    seen = json.loads(out)
    assert shim.returncode == 0 and seen["tune"]
    assert seen["ray_data"] == "DeferredModule" and seen["pandas"] == "DeferredModule"


@pytest.mark.integration
def test_a_shim_waits_for_a_server_still_starting(tmp_path):
    # The raylet may start a worker before the server, started just before it, has bound its socket.
    folder = tmp_path / "server"
    folder.mkdir(mode=0o700)
    path = folder / "socket"
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    shim = _shim({workershim.SOCKET_ENV: str(path)}, worker, tmp_path, "0")
    time.sleep(1.0)
    server = subprocess.Popen(
        [sys.executable, "-m", "tuning_service.raytune.workerfork", str(path), str(os.getpid())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        out, _ = shim.communicate(timeout=120)
        assert shim.returncode == 0 and json.loads(out)["ppid"] == server.pid
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.integration
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_worker_ends_with_its_shim(server, tmp_path, how):
    # SIGTERM (Ray's way to stop a worker) is passed on; a shim killed outright (the raylet gave
    # up on it) has its worker killed by the server.
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    shim = _shim(server.env, worker, tmp_path, "sleep")
    assert shim.stdout is not None
    seen = json.loads(shim.stdout.readline())
    shim.send_signal(how)
    shim.wait(timeout=30)
    assert _gone(seen["pid"], within=10)


@pytest.mark.integration
def test_a_shim_stopped_while_its_worker_is_forked_passes_the_signal_on(tmp_path):
    # The raylet may stop a worker it has just started, before the server has said the worker's
    # pid: the signal waits for it. A server of the test's own holds its answer until the shim
    # has had SIGTERM, so the signal comes while the worker is being forked, every time.
    path = tmp_path / "socket"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    shim = _shim({workershim.SOCKET_ENV: str(path)}, tmp_path / "unused.py", tmp_path, "sleep")
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        listener.settimeout(60)
        conn, _ = listener.accept()
        with conn:
            _data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
            for fd in fds:
                os.close(fd)
            shim.send_signal(signal.SIGTERM)
            assert _handled(shim.pid, signal.SIGTERM, within=10)  # it holds the signal, with no pid yet
            assert shim.poll() is None
            conn.sendall(f"{worker.pid}\n".encode())
            assert worker.wait(timeout=30) == -signal.SIGTERM  # the held signal reached the worker
            conn.sendall(b"143\n")  # what the server says once its worker has ended
            assert shim.wait(timeout=30) == 143
    finally:
        listener.close()
        worker.kill()
        worker.wait()
        shim.kill()
        shim.wait()


@pytest.mark.integration
def test_the_server_ends_and_removes_its_socket_when_its_driver_is_killed(tmp_path):
    driver = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from tuning_service.raytune.workerfork import fork_server\n"
            "with fork_server(Path(sys.argv[1])) as s:\n"
            "    print(s.pid, s.env['TUNING_SERVICE_WORKER_FORK_SOCKET'], flush=True); time.sleep(120)\n",
            str(tmp_path / "server.log"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdout is not None
    pid, path = driver.stdout.readline().split()
    deadline = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(path).exists()
    driver.kill()
    driver.wait()
    assert _gone(int(pid), within=10)
    assert not Path(path).parent.exists()


def test_a_new_server_removes_the_folders_of_servers_whose_driver_is_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    abandoned, running, unknown = (tmp_path / f"{workerfork.FOLDER_PREFIX}{name}" for name in ("a", "b", "c"))
    for folder in (abandoned, running, unknown):
        folder.mkdir()
    (abandoned / workerfork.OWNER).write_text(gone.stdout.strip())  # a driver that has ended
    (running / workerfork.OWNER).write_text(str(os.getpid()))
    workerfork._remove_abandoned()
    assert not abandoned.exists() and running.exists() and unknown.exists()  # unknown: being made


# In a new process (the test session's own Ray would be reused): a Tune run of four trials on a
# 2-CPU embedded Ray and an actor after it; for each, its worker's pid and parent, and whether
# TensorFlow was imported before it started (neither imports it).
SCRIPT = r"""
import json, os, sys
from pathlib import Path

from tuning_service.raytune.raysession import prepare_environment, ray_session

prepare_environment(None)
import ray
from ray import tune

def seen():
    parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return {"pid": os.getpid(), "ppid": os.getppid(), "tensorflow": "tensorflow" in sys.modules,
            "forked": "tuning_service.raytune.workerfork" in parent}

def trial(config):
    tune.report(seen())

with ray_session(None, Path(sys.argv[1]), trial_slots=2, num_cpus=2):
    grid = tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        param_space={"n": tune.grid_search([1, 2, 3, 4])},
        run_config=tune.RunConfig(storage_path=str(Path(sys.argv[1]) / "tune"), verbose=0),
    ).fit()
    trials = [{k: r.metrics[k] for k in ("pid", "ppid", "tensorflow", "forked")} for r in grid]

    @ray.remote(num_cpus=1)
    class Later:
        def seen(self):
            return seen()

    later = ray.get(Later.remote().seen.remote())
    server = os.environ.get("TUNING_SERVICE_WORKER_FORK_SOCKET")
    print(json.dumps({"trials": trials, "later": later, "socket_in_driver": server}))
"""


@pytest.mark.integration
def test_a_sweeps_trials_run_on_workers_forked_warm_and_nothing_is_left(tmp_path, run_script):
    seen = run_script(SCRIPT, tmp_path, timeout=300)
    workers = [*seen["trials"], seen["later"]]
    parents = {w["ppid"] for w in workers}
    # One fork server for all, the later actor's worker too (Ray starts it for the job).
    assert len(parents) == 1 and all(w["forked"] for w in workers), seen
    assert all(w["tensorflow"] for w in workers), seen
    # Only the raylet's environment named the server, not the driver's.
    assert seen["socket_in_driver"] is None
    # The session stopped the server and its workers.
    assert all(_gone(pid, within=15) for pid in [*parents, *(w["pid"] for w in workers)]), seen


# In a new process (without the test session's Ray, so the sweep starts its own fork server):
# a sweep whose input is refused after its fork server started (its --sweep-id names a sweep
# that exists, which only the results folder can tell).
REFUSED = r"""
import json, os, sys, tempfile
from contextlib import contextmanager
from pathlib import Path

tempfile.tempdir = sys.argv[1]
from tuning_service.core.errors import InputError
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune import workerfork
from tuning_service.sweeps.runner import run_sweep

started = []
real = workerfork.fork_server

@contextmanager
def recorded(*args, **kwargs):
    with real(*args, **kwargs) as server:
        started.append(server.pid)
        yield server

workerfork.fork_server = recorded
storage = Path(sys.argv[1]) / "results"
(storage / "digits" / "20260101-000000-abcdef").mkdir(parents=True)
spec = SweepSpec(job="digits", storage=str(storage), sweep_id="20260101-000000-abcdef")
try:
    run_sweep(spec)
except InputError as exc:
    print(json.dumps({"error": str(exc), "started": started}))
"""


@pytest.mark.integration
def test_input_refused_after_the_fork_server_started_leaves_nothing(tmp_path, run_script):
    seen = run_script(REFUSED, tmp_path)
    assert "that sweep exists already" in seen["error"]
    (pid,) = seen["started"]  # the server started before the check that refused the input ...
    assert _gone(pid, within=10)  # ... and ended with it, its folder removed
    assert not list(tmp_path.glob(f"{workerfork.FOLDER_PREFIX}*"))
    assert [p.name for p in (tmp_path / "results" / "digits").iterdir()] == ["20260101-000000-abcdef"]


def test_the_keep_time_is_checked(monkeypatch):
    monkeypatch.delenv(KEEP_ENV)
    assert keep_seconds() == workerkeep.DEFAULT_KEEP_S
    monkeypatch.setenv(KEEP_ENV, " 0 ")
    assert keep_seconds() == 0
    monkeypatch.setenv(KEEP_ENV, "2.5")
    assert keep_seconds() == 2.5
    for bad in ("-1", "soon", "inf", "nan"):
        monkeypatch.setenv(KEEP_ENV, bad)
        with pytest.raises(InputError, match=rf"{KEEP_ENV} must be .*\(a number >= 0; 0: .*not '{bad}'"):
            keep_seconds()


def test_only_a_folder_of_this_users_alone_is_used(tmp_path):
    assert workerkeep._private(tmp_path / "new")  # made, mode 0700
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    assert workerkeep._private(tmp_path / "new")  # there already, and private
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert not workerkeep._private(shared)
    (tmp_path / "link").symlink_to(tmp_path / "new")
    assert not workerkeep._private(tmp_path / "link")  # a link someone else may have placed


def test_a_driver_waiting_while_the_server_removes_its_folder_makes_it_anew(tmp_path):
    folder = tmp_path / "kept"
    held = workerkeep._lock(folder)
    assert held is not None
    got: list[object] = []
    waiting = threading.Thread(target=lambda: got.append(workerkeep._lock(folder)))
    waiting.start()
    time.sleep(0.2)
    assert not got  # it waits for the lock
    # What a leaving server does under the lock: its files and folder go, then the lock.
    (folder / workerfork.LOCK).unlink()
    folder.rmdir()
    held.close()
    waiting.join(10)
    (lock,) = got
    assert isinstance(lock, io.TextIOWrapper)
    assert os.fstat(lock.fileno()).st_ino == (folder / workerfork.LOCK).stat().st_ino
    assert folder.stat().st_mode & 0o777 == 0o700
    lock.close()


def test_the_folder_follows_what_the_imports_read(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    first = workerkeep.kept_folder()
    monkeypatch.setenv("TUNING_SERVICE_DB_PASSWORD", "not part of it")
    assert workerkeep.kept_folder() == first
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert workerkeep.kept_folder() != first
    assert first.name.startswith(f"{workerkeep.KEPT_PREFIX}{os.getuid()}-")


def _environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().partition("=")[::2] for p in pairs if p)


def _worker(env: dict[str, str], tmp_path: Path) -> dict:
    """What a worker forked for a shim with ``env`` says of itself."""
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    shim = _shim(env, worker, tmp_path, "0")
    out, _ = shim.communicate(timeout=120)
    assert shim.returncode == 0
    return json.loads(out)


@pytest.mark.integration
def test_a_kept_server_serves_sweep_after_sweep_then_ends_when_idle(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=workerkeep.__name__)
    folder = tmp_path / "kept"
    monkeypatch.setattr(workerkeep, "kept_folder", lambda: folder)
    # Python imports sitecustomize from PYTHONPATH as it starts: a file the server imported.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("RAY_AUTH_TOKEN", "a secret of this sweep's")
    started: list[int] = []
    try:
        with kept_fork_server(2.5) as first:
            started.append(first.pid)
            # The driver's log names the server's output, for a look while the sweep runs.
            assert f"its output: {first.log}" in caplog.text and first.log.exists()
            assert _worker(first.env, tmp_path)["ppid"] == first.pid
            assert "RAY_AUTH_TOKEN" not in _environ(first.pid)  # started with what its imports read only
            assert _environ(first.pid)["PYTHONPATH"] == str(site)
            time.sleep(4.0)  # held: it does not end however long the sweep runs
            assert not _gone(first.pid, within=0.1)
        with kept_fork_server(600.0) as second:  # the next sweep, within the keep time
            assert second.pid == first.pid
            assert _worker(second.env, tmp_path)["ppid"] == first.pid
        # An edited module: the server hands its socket over to a new one, and ends.
        os.utime(site / "sitecustomize.py", ns=(time.time_ns(), time.time_ns() + 10**9))
        with kept_fork_server(600.0) as third:
            started.append(third.pid)
            assert third.pid != first.pid
            assert _gone(first.pid, within=10)
            assert _worker(third.env, tmp_path)["ppid"] == third.pid
        assert "sitecustomize.py changed since this kept server imported it" in third.log.read_text()
        with kept_fork_server(1.0) as fourth:  # the latest sweep's keep time is the server's
            assert fourth.pid == third.pid
        # Idle past its keep time: it ends, and its folder with it.
        assert _gone(third.pid, within=15)
        assert not folder.exists()
    finally:
        for pid in started:
            if not _gone(pid, within=0.1):
                os.kill(pid, 9)


# In a new process: two Tune runs one after the other, each on an embedded Ray of its own and
# holding the kept fork server (`workerkeep`, its folder in argv[1]); each trial's worker's parent.
KEPT_SCRIPT = r"""
import json, os, sys
from pathlib import Path

from tuning_service.raytune import workerkeep
from tuning_service.raytune.raysession import prepare_environment, ray_session

workerkeep.kept_folder = lambda: Path(sys.argv[1]) / "kept"
prepare_environment(None)
from ray import tune

def trial(config):
    parent = os.getppid()
    stat = Path(f"/proc/{parent}/stat").read_text()
    tune.report({"ppid": parent, "grandparent": int(stat.rpartition(")")[2].split()[1])})

seen = []
for run in range(2):
    with workerkeep.kept_fork_server(1.0) as server, ray_session(
        None, Path(sys.argv[1]), trial_slots=2, worker_forks=server, num_cpus=2
    ):
        grid = tune.Tuner(
            tune.with_resources(trial, {"cpu": 1}),
            param_space={"n": tune.grid_search([1, 2])},
            run_config=tune.RunConfig(storage_path=str(Path(sys.argv[1]) / f"tune{run}"), verbose=0),
        ).fit()
        seen.append({
            "server": server.pid,
            "parents": sorted({r.metrics["ppid"] for r in grid}),
            "grandparents": sorted({r.metrics["grandparent"] for r in grid}),
            "log": server.log.read_text()[server.log_from:],
        })
print(json.dumps(seen))
"""


@pytest.mark.integration
def test_two_sweeps_in_turn_run_their_trials_on_forks_of_one_kept_server(tmp_path, run_script):
    first, second = run_script(KEPT_SCRIPT, tmp_path, timeout=300, env={**os.environ, KEEP_ENV: "1"})
    assert first["server"] == second["server"]
    assert first["parents"] == [first["server"]]
    # The second sweep's workers: forks of the server's Ray stage, which imported Ray for them.
    [stage] = second["parents"]
    assert stage != first["server"] and second["grandparents"] == [first["server"]]
    assert f"process {stage} forks the workers of raylet" in second["log"]
    assert _gone(first["server"], within=30)  # once idle for its keep time after the second
    assert not (tmp_path / "kept").exists()


@pytest.mark.integration
def test_a_kept_server_whose_driver_is_killed_ends_when_idle(tmp_path):
    folder = tmp_path / "kept"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from tuning_service.raytune import workerkeep\n"
            "workerkeep.kept_folder = lambda: Path(sys.argv[1])\n"
            "with workerkeep.kept_fork_server(1.0) as s:\n"
            "    print(s.pid, flush=True); time.sleep(120)\n",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdout is not None
    pid = int(driver.stdout.readline())
    try:
        time.sleep(2.0)  # longer than the keep time: held all the while
        assert not _gone(pid, within=0.1)
        driver.kill()
        driver.wait()
        assert _gone(pid, within=60)  # after its imports, once idle for its keep time
    finally:
        if not _gone(pid, within=0.1):
            os.kill(pid, 9)


def test_the_folders_of_kept_servers_that_no_longer_run_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )

    def kept(name: str, pid: str) -> Path:
        folder = tmp_path / f"{workerkeep.KEPT_PREFIX}{os.getuid()}-{name}"
        folder.mkdir(mode=0o700)
        for file, text in (("server.pid", pid), ("server.log", "its output"), ("socket", ""), ("lock", "")):
            (folder / file).write_text(text)
        return folder

    killed = kept("killed", ended.stdout.strip())  # its server ended without removing it
    reused = kept("reused", str(os.getpid()))  # its pid now names another process
    busy = kept("busy", ended.stdout.strip())
    other = tmp_path / f"{workerfork.FOLDER_PREFIX}not-kept"
    other.mkdir()
    with open(busy / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a driver starting its server
        workerkeep.remove_abandoned_kept()
    assert not killed.exists() and not reused.exists()
    assert busy.exists() and other.exists()
    assert workerkeep.kept_servers() == []


@pytest.mark.integration
def test_the_workers_command_lists_the_kept_servers_and_stops_them(monkeypatch, capsys):
    from tuning_service.cli import main

    # A short folder of its own: a socket's path has at most 107 bytes.
    short = Path(tempfile.mkdtemp(prefix="ts-", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(short))
    try:
        with kept_fork_server(600.0) as server:
            pass  # the sweep ended; the server stays
        assert main(["workers", "--format", "json"]) == 0
        (listed,) = json.loads(capsys.readouterr().out)
        assert listed["pid"] == server.pid and listed["directory"] == os.getcwd()
        assert listed["memory_mib"] > 0 and listed["age_s"] >= 0
        assert main(["workers", "--stop", "--format", "json"]) == 0
        (stopped,) = json.loads(capsys.readouterr().out)
        assert stopped["pid"] == server.pid and stopped["stopped"] is True
        assert _gone(server.pid, within=10)
        assert main(["workers"]) == 0
        assert "no worker fork server is kept" in capsys.readouterr().out
        assert not list(short.iterdir())  # it removed its folder as it ended
    finally:
        for pid in [s.pid for s in workerkeep.kept_servers()]:
            os.kill(pid, 9)
        shutil.rmtree(short, ignore_errors=True)


def _stage_ready(log: Path, offset: int, raylet: int, within: float = 60.0) -> int:
    """The pid of the Ray stage the server's log says forks the workers of ``raylet``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in log.read_text()[offset:].splitlines():
            if line.endswith(f"forks the workers of raylet {raylet}"):
                return int(line.split()[1])
        time.sleep(0.1)
    raise AssertionError(f"no Ray stage for raylet {raylet}: {log.read_text()[offset:]}")


@pytest.mark.integration
def test_a_kept_servers_ray_stage_forks_the_workers_of_a_sweep_started_as_the_last(tmp_path, monkeypatch):
    folder = tmp_path / "kept"
    monkeypatch.setattr(workerkeep, "kept_folder", lambda: folder)
    job = {"RAY_JOB_ID": "01000000", "TUNE_MARK": "a"}
    with kept_fork_server(600.0) as first:
        try:
            # A sweep's workers: forked by the server, which learns what Ray reads of their environment.
            seen = _worker({**first.env, **job, "RAY_RAYLET_PID": "1"}, tmp_path)
            assert seen["ppid"] == first.pid and not seen["ray"]
            first_frozen = seen["frozen"]
            first.raylet_started(1)  # a new server is told nothing: it had learned nothing
            assert not first.log.read_text()[first.log_from :].count("imports Ray")
        except BaseException:
            os.kill(first.pid, signal.SIGKILL)
            raise
    try:
        with kept_fork_server(600.0) as second:  # the next sweep, with a raylet of its own
            assert second.pid == first.pid
            second.raylet_started(2)
            stage = _stage_ready(second.log, second.log_from, raylet=2)
            env = {**second.env, **job, "RAY_RAYLET_PID": "2"}
            seen = _worker(env, tmp_path)
            assert seen["ppid"] == stage and seen["ray"]  # Ray imported before the fork
            # Tune, without Ray Data's code or pandas'
            assert (
                seen["tune"] and seen["ray_data"] == "DeferredModule" and seen["pandas"] == "DeferredModule"
            )
            assert seen["frozen"] > first_frozen  # and out of the collector's reach, as TensorFlow's
            # Another sweep's worker (what Ray reads differs), and a worker of no job: the server's.
            assert _worker({**env, "TUNE_MARK": "b"}, tmp_path)["ppid"] == second.pid
            no_job = {k: v for k, v in env.items() if k != "RAY_JOB_ID"}
            assert _worker(no_job, tmp_path)["ppid"] == second.pid
            assert not _gone(stage, within=0.5)
        assert _gone(stage, within=10)  # the sweep let go: its stage ends
    finally:
        os.kill(first.pid, signal.SIGTERM)
        assert _gone(first.pid, within=10)


def test_a_ray_stage_imports_with_what_ray_reads_of_a_jobs_worker_but_its_secrets():
    env = {
        "RAY_JOB_ID": "01000000", "RAY_RAYLET_PID": "7", "RAY_DEDUP_LOGS": "0", "TUNE_X": "1",
        "AIR_Y": "2", "RAY_AUTH_TOKEN": "t", "RAY_DB_PASSWORD": "p", "AWS_SECRET_ACCESS_KEY": "k",
        "TUNING_SERVICE_DB": "postgresql://u:p@h/d", "PATH": "/bin",
    }  # fmt: skip
    assert workerstage.ray_variables(env) == {
        "RAY_JOB_ID": "01000000", "RAY_RAYLET_PID": "7", "RAY_DEDUP_LOGS": "0", "TUNE_X": "1", "AIR_Y": "2",
    }  # fmt: skip
    # A worker Ray starts before any job asks for one (the nil job), or a request of no job.
    assert workerstage.ray_variables({**env, "RAY_JOB_ID": "ffffffff"}) is None
    assert workerstage.ray_variables({"PATH": "/bin"}) is None


def test_a_ray_stage_that_cannot_fork_says_why_and_the_server_forks_the_sweeps_workers(monkeypatch):
    monkeypatch.setattr(os, "environ", dict(os.environ))  # what the stage sets stays in this test
    monkeypatch.setattr(workerstage.signal, "signal", lambda *_: None)
    failure = "importing Ray started a thread, which its forks would lack"
    monkeypatch.setattr(workerstage, "_import_ray", lambda: failure)
    variables = {"RAY_JOB_ID": "01000000", "RAY_RAYLET_PID": "7"}
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    hold, held = socket.socketpair()
    try:
        assert workerstage._serve_stage(theirs, variables) == 1  # it forks nothing
        selector = selectors.DefaultSelector()
        stages = workerstage.RayStages(selector)
        stages.learned = {"RAY_JOB_ID": "01000000"}
        stages.stages[hold] = workerstage._Stage(0, ours, variables)
        selector.register(ours, selectors.EVENT_READ, workerstage.STAGE)
        stages.heard(ours)  # the server reads why, lets the stage go and learns anew
        assert not stages.stages and stages.learned is None
        request = {"argv": [], "env": variables, "cwd": "/"}
        assert not stages.take(request, [], held)  # so the server forks this worker itself
        assert stages.learned == {"RAY_JOB_ID": "01000000"}
    finally:
        for end in (theirs, hold, held):
            end.close()
