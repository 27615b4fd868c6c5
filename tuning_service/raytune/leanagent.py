"""The embedded Ray's dashboard agent, run as Ray's minimal install runs it: without its modules.

Ray's raylet starts a dashboard agent and registers with Ray's GCS only once the agent is up.
A full agent first imports every one of Ray's dashboard modules (about half a second of CPU
on 2 cores; `python -m benchmarks.startup` times Ray's start) and loads the seven it finds: the
metrics reporter, Jobs, logs, events, a health check, all of them served to Ray's dashboard.
The embedded Ray has no dashboard (`embedded.start_lean_head` starts no API server), so they
serve no one there. Ray's minimal install (``pip install ray``) runs the agent without them
(``--minimal``: no modules, no metrics agent, no HTTP server); the embedded node's agent runs
so too, and this launcher spares it importing the modules it would not load.

`minimal_dashboard_agent` is held while the lean head starts its raylet: Ray then builds the
agent's command as for its minimal install, run through `main` here. Clusters started with
``ray start`` keep Ray's full agent. Where Ray's private functions differ, Ray's own agent runs.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

# Why the agent runs minimal, as Ray's check says why (an ImportError).
MINIMAL_REASON = "the embedded Ray serves no dashboard: its dashboard agent runs as in Ray's minimal install"


@contextmanager
def minimal_dashboard_agent() -> Iterator[None]:
    """While held, Ray's raylet commands start the dashboard agent minimal, through `main`.

    Ray decides the agent's mode by importing the agent's dependencies (aiohttp, gRPC,
    OpenTelemetry: 0.3 s of the driver's CPU, for nothing else); told that the embedded Ray
    needs none, the driver imports none of them either.
    """
    try:
        from ray._private import ray_constants, services, utils
    except ImportError:
        yield
        return
    rays_check = getattr(utils, "get_dashboard_dependency_error", None)
    rays_command = getattr(services, "_build_python_executable_command_memory_profileable", None)
    agent = getattr(ray_constants, "PROCESS_TYPE_DASHBOARD_AGENT", None)
    if rays_check is None or rays_command is None or agent is None:
        yield
        return

    def command(component: str, *args: Any, **kwargs: Any) -> list[str]:
        built: list[str] = rays_command(component, *args, **kwargs)
        # Only Python itself (no memory profiler Ray was asked to run it under) is wrapped.
        if component == agent and len(built) <= 2:
            return [*built, "-m", __name__]
        return built

    with ExitStack() as restore:
        restore.callback(setattr, utils, "get_dashboard_dependency_error", rays_check)
        restore.callback(
            setattr, services, "_build_python_executable_command_memory_profileable", rays_command
        )
        utils.get_dashboard_dependency_error = _minimal
        services._build_python_executable_command_memory_profileable = command
        yield


def _minimal() -> ImportError:
    return ImportError(MINIMAL_REASON)


def loaded_modules(module_type: Any) -> list[Any]:
    """The dashboard modules Ray's minimal agent loads: those marked minimal, of the ones imported
    (Ray's own list imports every module first, to leave out all but those)."""
    return [m for m in module_type.__subclasses__() if m.is_minimal_module()]


def main(argv: list[str]) -> None:
    """Run Ray's dashboard agent (``argv[0]``, its script) with its arguments, minimal."""
    import ray.dashboard.utils as dashboard_utils

    script = argv[0]
    dashboard_utils.get_all_modules = loaded_modules
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(script)  # as when Python runs the script itself
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
