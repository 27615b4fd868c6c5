"""Built-in jobs: one module per dataset, each exposing ``JOB``."""

from __future__ import annotations

from tuning_service.registry import Registry

JOBS = Registry("job")
JOBS.add_lazy("digits", "jobs.digits:JOB")
