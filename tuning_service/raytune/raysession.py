"""Start an embedded Ray or join a cluster for one sweep, with Ray's logs sent to a file."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tuning_service.core.auth import missing_or_wrong, prepare_client_auth, token_source
from tuning_service.core.errors import InputError, SweepError
from tuning_service.raytune.embedded import init_embedded, shutdown_embedded
from tuning_service.raytune.fixedresources import resources_counted_in_driver
from tuning_service.raytune.warmworkers import plain_trial_actors
from tuning_service.raytune.workerfork import ForkServer

log = logging.getLogger(__name__)
T = TypeVar("T")

RAY_LOG = "ray.log"
# Joining a cluster fails within this many seconds (per check) instead of Ray's minute of retries.
CONNECT_TIMEOUT_ENV = "TUNING_SERVICE_CONNECT_TIMEOUT_S"
DEFAULT_CONNECT_TIMEOUT_S = 10.0


def connect_timeout() -> float:
    """Seconds each cluster check may take: $TUNING_SERVICE_CONNECT_TIMEOUT_S, else 10."""
    from tuning_service.core.envvars import positive_seconds

    return positive_seconds(CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S)


# Ray's single-machine switch: with it off ("0"), Ray keeps 127.0.0.1 as this node's
# address instead of swapping in the machine's public one.
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Ray's loggers whose chatter belongs in the sweep's log file, not on the console.
_RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.data")


# A Ray Client server forks a server of its own for each client, and that fork can die in
# gRPC's fork handling (ray-project/ray#63202: a few percent of connections). The client then
# gets one of these texts; a new connection forks again, so it is tried up to this many times.
CLIENT_SERVER_DIED = ("Starting Ray client server failed", "in start_specific_server")
CLIENT_ATTEMPTS = 3


def connect_client(connect: Callable[[], T], address: str) -> T:
    """``connect()`` (Ray Client's connection), again while Ray's server for this client died starting."""
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        try:
            return connect()
        except ConnectionError as exc:
            if attempt == CLIENT_ATTEMPTS or not any(text in str(exc) for text in CLIENT_SERVER_DIED):
                raise
            log.warning(
                "the Ray Client at %s could not start its server for this client (attempt %d of %d); "
                "connecting again",
                address,
                attempt,
                CLIENT_ATTEMPTS,
            )
    raise AssertionError("unreachable: the last attempt returns or raises")


def prepare_environment(address: str | None) -> None:
    """Environment that must be set before Ray or TensorFlow is imported in this process."""
    if address in (None, "local"):
        ensure_local_token()
        # An embedded Ray serves this process only: every server binds to loopback.
        # (This switch is Ray's "single-machine" mode; ray.init(_node_ip_address=
        # "127.0.0.1") is turned into the machine's public address instead.)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # Nor the idle workers Ray starts (one per CPU) when the driver connects, unless the
        # sweep's trial actors will run on them (`warmworkers`, which turns them back on for
        # its node): Tune's trial actors get workers of their own otherwise, and starting idle
        # ones only took CPU from the driver's set-up (`python -m benchmarks.startup` times it).
        os.environ.setdefault("RAY_prestart_worker_first_driver", "0")
        _refresh_imported_ray()
    else:
        prepare_cluster_client(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # The legacy console output honours verbose=0; the new one prints tables regardless.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def prepare_cluster_client(address: str) -> None:
    """Token mode and loopback handling for a process that joins a cluster (before Ray is imported)."""
    prepare_client_auth()
    target = parse_address(address)
    if target is not None and target[0] in LOOPBACK:
        # A head started by cluster/start-head.sh listens on loopback only; Ray would
        # otherwise dial the machine's public address, where nothing listens.
        os.environ.setdefault(SINGLE_MACHINE_ENV, "0")
        _refresh_imported_ray()


def parse_address(address: str) -> tuple[str, int] | None:
    """HOST and PORT of a cluster address (``auto`` read from RAY_ADDRESS); None if Ray must look."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
    for scheme in ("ray://", "http://", "https://"):
        address = address.removeprefix(scheme)
    host, sep, port = address.rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_reachable(host: str, port: int, *, timeout: float | None = None, what: str = "Ray") -> None:
    """Refuse an address nothing answers at within ``timeout`` (Ray alone retries for a minute)."""
    timeout = connect_timeout() if timeout is None else timeout
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InputError(
            f"cannot reach {what} at {host_port(host, port)} ({reason}, after {time.monotonic() - started:.1f}s); "
            "check that the head node is running and the address and port are right"
        ) from None


def check_cluster_access(host: str, port: int, *, timeout: float | None = None) -> Any:
    """Refuse clearly, within ``timeout``, a cluster that rejects this process's token.

    Ray's own ``ray.init`` retries for about 20 seconds and then reports only
    "Failed to connect"; one GCS handshake tells a wrong or missing token apart.
    Returns Ray's GCS client, connected.
    """
    timeout = connect_timeout() if timeout is None else timeout
    from ray._raylet import GcsClient  # type: ignore[attr-defined]
    from ray.exceptions import AuthenticationError

    from tuning_service.core.deadline import within

    where = host_port(host, port)
    try:
        return within(timeout, lambda: GcsClient(address=where), what=f"Ray at {where}")
    except TimeoutError:
        raise InputError(
            f"no Ray head answered at {where} within {timeout:g}s; is that the head's GCS port "
            "(`ray start --port`, default 6379) rather than the dashboard's (8265)?"
        ) from None
    except AuthenticationError:
        raise InputError(
            f"the Ray cluster at {where} refused this client: {missing_or_wrong(token_source())}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - whatever Ray raised, as one line
        raise InputError(f"cannot connect to Ray at {where}: {exc}") from None


def alive_nodes(client: Any, *, timeout: float | None = None) -> dict[str, Any]:
    """Node id -> Ray's node record, for every alive node the cluster's GCS knows."""
    timeout = connect_timeout() if timeout is None else timeout
    from ray.core.generated.gcs_pb2 import GcsNodeInfo  # type: ignore[attr-defined]

    infos = client.get_all_node_info(timeout=timeout)
    return {
        node_id.hex(): info for node_id, info in infos.items() if info.state == GcsNodeInfo.GcsNodeState.ALIVE
    }


def check_local_node(client: Any, where: str, *, timeout: float | None = None) -> None:
    """Refuse at once a driver on a machine that is not a node of the cluster.

    A Ray driver attaches to a node on its own machine; without one, ray.init waits
    a minute and then names node attributes. Skipped if Ray's internals moved.
    """
    timeout = connect_timeout() if timeout is None else timeout
    try:
        from ray._private.services import find_node_ids

        local, alive = set(find_node_ids()), set(alive_nodes(client, timeout=timeout))
    except (ImportError, AttributeError, RuntimeError) as exc:
        log.debug("cannot tell whether this machine is a node: %s", exc)
        return
    if not local & alive:
        raise InputError(
            f"no node of the Ray cluster at {where} runs on this machine; `run --address` drives a sweep "
            "from one of its nodes (Ray attaches a driver to a local node). From elsewhere, submit it: "
            "tuning-service submit --address http://HEAD:8265 (through `ssh -L 8265:127.0.0.1:8265 HEAD`)"
        )


def _private_log(path: Path) -> Path:
    """``path`` as a log file only its owner reads: Ray's logs name nodes, jobs and environments."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # never a device or pipe the user pointed at
            os.fchmod(fd, 0o600)  # a file from before, or a umask that let more through
    finally:
        os.close(fd)
    return path


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send this process's file descriptor 2 to ``path``: Ray's C++ client warns there directly."""
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(_private_log(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(target, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


class _RayLogFile(logging.FileHandler):
    """ray.log in the sweep folder; lines it cannot write (a full disk) are dropped with one
    warning, instead of the traceback `logging` prints on stderr for every such line."""

    _warned = False

    def _drop(self, exc: BaseException | None) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "could not write Ray's log to %s (%s); its lines are dropped until there is room",
                self.baseFilename,
                exc,
            )

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self._drop(sys.exc_info()[1])

    def close(self) -> None:
        try:
            super().close()  # flushes what is buffered
        except OSError as exc:
            self._drop(exc)


@contextmanager
def ray_logs_to(path: Path) -> Iterator[None]:
    """Send Ray's Python logging to ``path`` for the duration of a sweep."""
    handler = _RayLogFile(_private_log(path), encoding="utf-8")
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


def skip_unsent_usage_tags() -> None:
    """With Ray's usage statistics off, do not let Tune import what only they would report.

    Tune's ``run`` tags the callbacks it was given for its usage statistics even when
    they are off, and to name them it imports its MLflow, Weights & Biases and Comet
    integrations: MLflow alone is about a second of CPU before the first trial starts.
    The tags are never sent with the statistics off (``RAY_USAGE_STATS_ENABLED=0``, this
    service's default), so the tagging is skipped then. (A private Ray module: if an
    upgrade moves it, nothing is skipped and nothing else changes.)
    """
    if os.environ.get("RAY_USAGE_STATS_ENABLED") != "0":
        return
    try:
        from ray.air._internal import usage
    except ImportError:
        return
    if callable(getattr(usage, "tag_callbacks", None)):
        usage.tag_callbacks = _no_tags


def _no_tags(callbacks: Any) -> bool:
    return False


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


def _append(source: Path, dest: Path, start: int = 0) -> None:
    """Copy ``source``'s text from byte ``start`` on to the end of ``dest``."""
    try:
        with open(source, "rb") as src, open(dest, "ab") as dst:
            src.seek(start)
            shutil.copyfileobj(src, dst)
    except OSError as exc:
        log.debug("could not copy %s: %s", source, exc)


def _refresh_imported_ray() -> None:
    """Make an already imported Ray see the environment set above.

    Ray reads these settings when it is imported; a notebook or another library may
    have imported it first. This does what Ray's own token setup does to refresh.
    """
    if "ray" not in sys.modules:
        return
    try:
        from ray._private import ray_constants
        from ray._raylet import Config  # type: ignore[attr-defined]

        ray_constants.ENABLE_RAY_CLUSTER = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0"
        Config.initialize("")
    except (ImportError, AttributeError) as exc:  # a Ray without these internals
        log.debug("could not refresh Ray's settings: %s", exc)


def ensure_local_token() -> None:
    """Give an embedded Ray a token without writing one into the user's home (before importing Ray).

    Ray >= 2.52 turns token authentication on for a local ``ray.init()`` and, with
    no token configured, writes one to ``~/.ray/auth_token``. An embedded sweep
    only needs a token its own processes share, so it gets a fresh one in the
    environment, which Ray's raylet and workers inherit.
    """
    from tuning_service.core.auth import warn_if_auth_disabled

    warn_if_auth_disabled()
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    configured = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    if not any(os.environ.get(k) for k in configured) and not (Path.home() / ".ray" / "auth_token").exists():
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


@contextmanager
def ray_session(
    address: str | None,
    log_dir: Path,
    *,
    trial_slots: int = 0,
    worker_forks: ForkServer | None = None,
    **init_kwargs: Any,
) -> Iterator[str]:
    """Use the Ray this process already runs, or start/join one and shut it down after.

    ``trial_slots``: how many Keras trials the sweep runs at once, at most (`warmworkers`);
    0 for none or another trainable. ``worker_forks``: a fork server already started for an
    embedded Ray's workers (`workerfork`; its log is copied into the sweep's Ray log). Yields a
    description of where the sweep runs (for records and messages).
    """
    import ray
    from ray.exceptions import AuthenticationError

    if ray.is_initialized():
        yield "existing Ray session"
        return
    embedded = address is None or address == "local"
    target_address = address or "local"
    with ray_logs_to(log_dir / RAY_LOG):
        kwargs: dict[str, Any] = {
            "log_to_driver": False,
            "configure_logging": False,
            "logging_level": logging.INFO,
            **init_kwargs,
        }
        head = None  # the embedded Ray's node, where this process started it lean
        after_head = ExitStack()  # what to close after it (its workers' fork server)
        if not embedded:
            kwargs["address"] = target_address
            target = parse_address(target_address)
            if target is not None:
                check_reachable(*target)
                if not target_address.startswith("ray://"):  # Ray Client speaks another protocol
                    with _stderr_to(log_dir / RAY_LOG):
                        client = check_cluster_access(*target)
                    check_local_node(client, host_port(*target))
        log.info("starting %s", "an embedded local Ray" if embedded else f"a connection to {address}")
        started = time.monotonic()
        try:
            if target_address.startswith("ray://"):
                context = connect_client(lambda: ray.init(**kwargs), target_address)
            elif embedded:
                context, head, after_head = init_embedded(
                    trial_slots=trial_slots, worker_log=log_dir / RAY_LOG, worker_forks=worker_forks, **kwargs
                )
            else:
                context = ray.init(**kwargs)
        except AuthenticationError:
            raise InputError(
                f"the Ray cluster at {address!r} refused this client: {missing_or_wrong(token_source())}"
            ) from None
        except (ConnectionError, RuntimeError, ValueError) as exc:
            hint = ""
            if target_address.startswith("ray://") and "timeout" in str(exc):
                # The Ray Client answers a client without this cluster's token by never
                # finishing the handshake: the port is open (checked above), the wait runs out.
                hint = f"; a Ray Client refuses this way a client without the cluster's token: {missing_or_wrong(token_source())}"
            raise InputError(f"cannot connect to Ray at {address!r}: {exc}{hint}") from None
        except Exception as exc:  # noqa: BLE001 - Ray raises bare Exceptions and OSErrors when its node cannot start
            what = (
                "start an embedded Ray" if embedded else f"start Ray's driver for the cluster at {address!r}"
            )
            raise SweepError(
                f"could not {what}: {type(exc).__name__}: {exc} (Ray's log: {log_dir / RAY_LOG})"
            ) from None
        where = (
            "embedded local Ray"
            if embedded
            else str(getattr(context, "address_info", {}).get("address", address))
        )
        log.info("ready: %s in %.1fs", where, time.monotonic() - started)
        try:
            with ExitStack() as embedded_only:
                if head is not None:
                    # The trial actors of a Ray this process started inherit its environment: they
                    # need no runtime environment of their own, which would keep them off the warm
                    # workers; and the node is the sweep's alone, so the driver can count its CPUs.
                    embedded_only.enter_context(plain_trial_actors())
                    embedded_only.enter_context(resources_counted_in_driver())
                yield where
        finally:
            with after_head:
                shutdown_embedded(head)
            if worker_forks is not None:
                _append(worker_forks.log, log_dir / RAY_LOG, worker_forks.log_from)
