"""Start an embedded Ray or join a cluster for one sweep, with Ray's logs sent to a file."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tuning_service.errors import InputError

RAY_LOG = "ray.log"
# Ray's loggers whose chatter belongs in the sweep's log file, not on the console.
_RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.data")


def prepare_environment(address: str | None) -> None:
    """Environment that must be set before Ray or TensorFlow is imported in this process."""
    if address in (None, "local"):
        ensure_local_token()
        # An embedded Ray serves this process only: every server binds to loopback.
        # (This switch is Ray's "single-machine" mode; ray.init(_node_ip_address=
        # "127.0.0.1") is turned into the machine's public address instead.)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        _refresh_imported_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # The legacy console output honours verbose=0; the new one prints tables regardless.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@contextmanager
def ray_logs_to(path: Path) -> Iterator[None]:
    """Send Ray's Python logging to ``path`` for the duration of a sweep."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = []
    for name in _RAY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers, logger.propagate = handlers, propagate
        handler.close()


def node_capacity() -> tuple[float, float]:
    """The most CPUs and GPUs any single alive node of the connected cluster has."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = max((n["Resources"].get("CPU", 0.0) for n in nodes), default=0.0)
    gpus = max((n["Resources"].get("GPU", 0.0) for n in nodes), default=0.0)
    return cpus, gpus


def check_fits(cpus_per_trial: float, gpus_per_trial: float, cpus: float, gpus: float, where: str) -> None:
    """Refuse a per-trial request no node can satisfy (Ray would wait for it forever)."""
    if cpus_per_trial > cpus:
        raise InputError(
            f"--cpus-per-trial {cpus_per_trial:g} is more than any node of {where} has ({cpus:g} CPUs)"
        )
    if gpus_per_trial > gpus:
        raise InputError(
            f"--gpus-per-trial {gpus_per_trial:g} is more than any node of {where} has ({gpus:g} GPUs)"
        )


def _refresh_imported_ray() -> None:
    """Make an already imported Ray see the environment set above.

    Ray reads these settings when it is imported; a notebook or another library may
    have imported it first. This does what Ray's own token setup does to refresh.
    """
    if "ray" not in sys.modules:
        return
    try:
        from ray._private import ray_constants
        from ray._raylet import Config

        ray_constants.ENABLE_RAY_CLUSTER = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0"
        Config.initialize("")
    except (ImportError, AttributeError) as exc:  # a Ray without these internals
        logging.getLogger(__name__).debug("could not refresh Ray's settings: %s", exc)


def ensure_local_token() -> None:
    """Give an embedded Ray a token without writing one into the user's home (before importing Ray).

    Ray >= 2.52 turns token authentication on for a local ``ray.init()`` and, with
    no token configured, writes one to ``~/.ray/auth_token``. An embedded sweep
    only needs a token its own processes share, so it gets a fresh one in the
    environment, which Ray's raylet and workers inherit.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    configured = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    if not any(os.environ.get(k) for k in configured) and not (Path.home() / ".ray" / "auth_token").exists():
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


@contextmanager
def ray_session(address: str | None, log_dir: Path, **init_kwargs: Any) -> Iterator[str]:
    """Use the Ray this process already runs, or start/join one and shut it down after.

    Yields a description of where the sweep runs (for records and messages).
    """
    import ray

    if ray.is_initialized():
        yield "existing Ray session"
        return
    embedded = address in (None, "local")
    with ray_logs_to(log_dir / RAY_LOG):
        kwargs: dict[str, Any] = {
            "log_to_driver": False,
            "configure_logging": False,
            "logging_level": logging.INFO,
            **init_kwargs,
        }
        if embedded:
            kwargs.setdefault("include_dashboard", False)
            kwargs.setdefault("num_cpus", os.cpu_count() or 1)
        else:
            kwargs["address"] = address
        try:
            context = ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(f"cannot connect to Ray at {address!r}: {exc}") from None
        try:
            yield (
                "embedded local Ray"
                if embedded
                else str(getattr(context, "address_info", {}).get("address", address))
            )
        finally:
            ray.shutdown()
