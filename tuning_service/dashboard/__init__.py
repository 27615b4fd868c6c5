"""A read-only live web view of the results database: sweeps, jobs, schedules, comparisons, downloads."""

from __future__ import annotations

from tuning_service.dashboard.app import create_app
from tuning_service.dashboard.database import open_read_only

__all__ = ["create_app", "open_read_only"]
