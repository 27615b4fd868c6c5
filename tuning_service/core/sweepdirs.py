"""Find sweep directories under a results root: by sweep id, by path, or all of one job."""

from __future__ import annotations

from pathlib import Path

from tuning_service.core.errors import InputError
from tuning_service.core.registry import did_you_mean
from tuning_service.core.results import SWEEP_JSON


def all_sweeps(root: str | Path) -> list[Path]:
    """Every finished sweep directory under ``root`` (``ROOT/JOB/SWEEP_ID``), oldest first."""
    return sorted(Path(root).glob(f"*/*/{SWEEP_JSON}"), key=lambda p: p.parent.name)


def find_sweep(ref: str, root: str | Path) -> Path:
    """A sweep directory from its id (searched under ``root``) or its path."""
    path = Path(ref)
    if (path / SWEEP_JSON).is_file():
        return path
    matches = [p.parent for p in all_sweeps(root) if p.parent.name == ref]
    if not matches:
        known = [p.parent.name for p in all_sweeps(root)]
        listing = ", ".join(known[-5:]) or "none"
        raise InputError(
            f"unknown sweep {ref!r} under {str(root)!r} (latest sweeps there: {listing})"
            f"{did_you_mean(ref, known)}"
        )
    return matches[0]


def job_sweeps(job: str, root: str | Path) -> list[Path]:
    """Every finished sweep of ``job`` under ``root``, oldest first."""
    found = [p.parent for p in all_sweeps(root) if p.parent.parent.name == job]
    if not found:
        jobs = sorted({p.parent.parent.name for p in all_sweeps(root)})
        raise InputError(
            f"no finished sweep of job {job!r} under {str(root)!r} (jobs there: {', '.join(jobs) or 'none'})"
        )
    return found
