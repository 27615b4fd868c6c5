"""The embedded Ray starts without Ray's autoscaler and log monitors and its API server, its
dashboard agent minimal (no dashboard modules; none of its dependencies imported in the driver),
waits for its raylet's registration itself, and stops all it started."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from tuning_service.raytune.embedded import CONNECT_RETRY_MS

# In a new process (the test session's own Ray would be reused): the command lines of this
# process's descendants while a sweep's Ray session is open, then of those still alive after.
SCRIPT = r"""
import json, os, sys
from pathlib import Path

def descendants():
    return [" ".join(argv) for _, argv in localcluster.descendants(os.getpid()) if argv]

from tuning_service.raytune import embedded
from tuning_service.testing import localcluster
from tuning_service.raytune.raysession import prepare_environment, ray_session

waits = []
await_registration = embedded.await_registration
embedded.await_registration = lambda *args: waits.append(await_registration(*args)) or waits[-1]
prepare_environment(None)
import ray
def connect_retry():
    from ray._raylet import Config
    return [Config.raylet_client_connect_timeout_milliseconds(), Config.raylet_client_num_connect_attempts()]

with ray_session(None, Path(sys.argv[1])) as where:
    retries = [connect_retry(), ray.get(ray.remote(connect_retry).remote())]
    inside = descendants()
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
agent_log = (logs / "dashboard_agent.log").read_text()
deps = "ray.dashboard.optional_deps" in sys.modules
print(json.dumps({"where": where, "inside": inside, "after": descendants(), "waits": waits, "deps": deps,
                  "agent_log": agent_log, "retries": retries}))
"""


@pytest.mark.integration
def test_the_embedded_ray_runs_without_the_monitors_and_leaves_no_process(tmp_path, run_script):
    seen = run_script(SCRIPT, tmp_path, timeout=120)
    assert seen["where"] == "embedded local Ray"
    inside = " ".join(seen["inside"])
    # The node runs (its GCS and raylet, and a worker for the task) ...
    assert "gcs_server" in inside and "raylet" in inside, seen["inside"]
    # ... without the three services a sweep's driver never uses: the monitors and the API server.
    assert "autoscaler/_private/monitor.py" not in inside and "log_monitor.py" not in inside, seen["inside"]
    assert "dashboard/dashboard.py" not in inside, seen["inside"]
    # Its dashboard agent runs minimal, through the launcher, and loaded none of the dashboard's
    # modules; the driver imported none of their dependencies to decide so.
    assert seen["deps"] is False
    raylet = next(c for c in seen["inside"] if "--dashboard_agent_command=" in c)
    agent = raylet.split("--dashboard_agent_command=", 1)[1].split(" --runtime_env_agent_command=")[0]
    assert "-m tuning_service.raytune.leanagent" in agent and "dashboard/agent.py" in agent, agent
    assert "--minimal" in agent, agent
    assert "Loaded 0 modules" in seen["agent_log"], seen["agent_log"][-2000:]
    assert seen["after"] == [], seen["after"]
    # The node waited for its raylet's registration itself (Ray's own check asks once a second).
    assert seen["waits"] == [True], seen["waits"]
    # Its processes (the driver, a worker) retry a socket not made yet every 20 ms, not every
    # second, within Ray's overall wait (10 s).
    assert seen["retries"] == [[CONNECT_RETRY_MS, 500]] * 2, seen["retries"]


@pytest.mark.integration
def test_the_wait_for_a_raylet_finds_a_registered_node_and_gives_up_on_an_unknown_one(ray_local):
    import ray

    from tuning_service.raytune.embedded import await_registration

    context = ray.get_runtime_context()
    assert await_registration(context.gcs_address, context.get_node_id(), timeout=5)
    # A node that never registers: False once the time is up, not a hang.
    assert not await_registration(context.gcs_address, "ab" * 28, timeout=0.2)


def test_a_ray_whose_node_api_differs_starts_as_ray_init_starts_it(monkeypatch, caplog):
    # Ray's node parameters are private: a release that renames a switch gets plain ray.init
    # (nothing is started here: the parameters fail before any process would start).
    import ray._private.parameter

    from tuning_service.raytune.embedded import start_lean_head

    def renamed(**kwargs):
        raise TypeError("RayParams.__init__() got an unexpected keyword argument 'no_monitor'")

    monkeypatch.setattr(ray._private.parameter, "RayParams", renamed)
    caplog.set_level(logging.DEBUG, logger="tuning_service.raytune.embedded")
    assert start_lean_head(2) is None
    assert "its node API differs" in caplog.text and "no_monitor" in caplog.text


LAUNCHED = r"""
import json, sys
import ray.dashboard.utils as dashboard_utils
modules = dashboard_utils.get_all_modules(dashboard_utils.DashboardAgentModule)
imported = sorted(m for m in sys.modules if m.startswith("ray.dashboard.modules."))
print(json.dumps({"name": __name__, "argv": sys.argv, "path0": sys.path[0], "modules": modules,
                  "imported": imported}))
"""


def test_the_lean_agent_runs_rays_agent_script_as_python_would_without_importing_its_modules(tmp_path):
    # Ray's full list imports every dashboard module (about half a second of CPU) and loads seven; the
    # launcher's loads those Ray's minimal agent would, importing none.
    script = tmp_path / "agent.py"
    script.write_text(LAUNCHED)
    done = subprocess.run(
        [sys.executable, "-m", "tuning_service.raytune.leanagent", str(script), "--node-id=x", "--minimal"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "name": "__main__",
        "argv": [str(script), "--node-id=x", "--minimal"],
        "path0": str(tmp_path),
        "modules": [],
        "imported": [],
    }
