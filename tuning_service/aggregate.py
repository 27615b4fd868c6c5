"""The job API's Python side: `best_config` and the export records of `tuning_service.sweeps.aggregate`."""

from __future__ import annotations

from tuning_service.sweeps.aggregate import (
    FORMATS,
    STATUS_ORDER,
    SweepSummary,
    best_config,
    best_configs,
    check_writable,
    compare,
    config_record,
    rank_trials,
    render_export,
    status_counts,
    summarize,
    summary_dict,
    top_trials,
    trial_dict,
    write_export,
)

__all__ = [
    "FORMATS",
    "STATUS_ORDER",
    "SweepSummary",
    "best_config",
    "best_configs",
    "check_writable",
    "compare",
    "config_record",
    "rank_trials",
    "render_export",
    "status_counts",
    "summarize",
    "summary_dict",
    "top_trials",
    "trial_dict",
    "write_export",
]
