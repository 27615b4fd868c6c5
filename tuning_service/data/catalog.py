"""Find a job by built-in name, `package.module:attr`, a `.py` file path, or a YAML/TOML job file."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from tuning_service.core.errors import InputError
from tuning_service.core.job import Job
from tuning_service.core.registry import Registry, did_you_mean


def builtin_jobs() -> Registry:
    """The registry of jobs shipped in the ``jobs`` package."""
    from jobs import JOBS

    return JOBS


def load_job(ref: str) -> Job:
    """Resolve ``ref`` to a Job.

    Accepted: a built-in name (``digits``), ``package.module:ATTR``, a path to
    a ``.py`` file exposing ``JOB`` (``path/to/job.py`` or ``path/to/job.py:ATTR``),
    or a job file over a CSV (``path/to/job.yaml``, ``.yml``, ``.toml``, ``.json``).
    """
    jobs = builtin_jobs()
    if ref in jobs:
        return _checked(jobs[ref], ref)
    from tuning_service.data.jobfile import SUFFIXES, load_job_file

    if ref.lower().endswith(SUFFIXES):
        return load_job_file(Path(ref))
    path_part, _, attr = ref.partition(":") if not os.path.exists(ref) else (ref, "", "")
    if path_part.endswith(".py"):
        return _checked(_from_file(Path(path_part), attr or "JOB"), ref)
    if attr:
        return _checked(_from_module(path_part, attr), ref)
    raise InputError(
        f"unknown job {ref!r}; choose one of: {', '.join(jobs.names())}, "
        f"or give package.module:JOB, a .py file or a .yaml job file{did_you_mean(ref, jobs.names())}"
    )


def _from_module(module_name: str, attr: str) -> object:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"job {module_name}:{attr}: cannot import module {module_name!r} ({exc})") from None
    if not hasattr(module, attr):
        raise InputError(f"job {module_name}:{attr}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def _from_file(path: Path, attr: str) -> object:
    if not os.path.isfile(path):
        raise InputError(f"job file {str(path)!r} does not exist")
    module_name = f"tuning_service_userjob_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"job file {str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except InputError:  # our own check (a bad space, say) already says what is wrong
        sys.modules.pop(module_name, None)
        raise
    except Exception as exc:  # the user's code: report where it broke, in one line
        sys.modules.pop(module_name, None)
        raise InputError(f"job file {str(path)!r} failed to import: {_where_it_broke(exc, path)}") from None
    # The module is not importable on Ray workers: its code travels with the pickled job.
    USER_MODULES.append(module)
    if not hasattr(module, attr):
        raise InputError(f"job file {str(path)!r} defines no {attr!r}")
    return getattr(module, attr)


# Job modules loaded from files; `ship_user_modules` registers them with Ray's pickler.
USER_MODULES: list[ModuleType] = []


def ship_user_modules() -> None:
    """Pickle file-loaded job modules by value, so Ray workers need not import them.

    Ray serialises with its own copy of cloudpickle (`ray.cloudpickle`), so the
    registration must go there; the runner calls this after importing Ray.
    """
    from ray import cloudpickle

    for module in USER_MODULES:
        cloudpickle.register_pickle_by_value(module)


def _where_it_broke(exc: Exception, path: Path) -> str:
    """``ImportError: no module named x (line 5)``: the last traceback line inside ``path``."""
    import traceback

    lines = [
        f.lineno
        for f in traceback.extract_tb(exc.__traceback__)
        if Path(f.filename).resolve() == path.resolve()
    ]
    message = " ".join(f"{type(exc).__name__}: {exc}".split())
    return f"{message} (line {lines[-1]})" if lines else message


def _checked(obj: object, ref: str) -> Job:
    if callable(obj) and not isinstance(obj, Job):
        obj = obj()
    if not isinstance(obj, Job):
        raise InputError(f"job {ref!r} is a {type(obj).__name__}, not a tuning_service Job")
    return obj
