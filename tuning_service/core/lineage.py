"""A PBT sweep's lineage: which trial copied which, at which epoch, what changed; lineage.json and its table rows."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuning_service.core.results import write_atomic

LINEAGE_JSON = "lineage.json"


def exploit_dict(row: Any) -> dict[str, Any]:
    """A store's `ExploitRow` as plain data (lineage.json, `results --format json`)."""
    return {
        "number": row.number,
        "trial_id": row.trial_id,
        "epoch": row.epoch,
        "value": row.value,
        "donor_id": row.donor_id,
        "donor_epoch": row.donor_epoch,
        "donor_value": row.donor_value,
        "changes": row.changes,
    }


def write_lineage(sweep_dir: Path, exploits: Sequence[Mapping[str, Any]]) -> Path | None:
    """Write lineage.json in the sweep's folder when the sweep had exploits."""
    if not exploits:
        return None
    path = Path(sweep_dir) / LINEAGE_JSON
    write_atomic(path, json.dumps(list(exploits), indent=2, default=str) + "\n")
    return path


def read_lineage(sweep_dir: Path) -> list[dict[str, Any]]:
    """The sweep's exploits from lineage.json; none when it has no such file (not a PBT sweep)."""
    path = Path(sweep_dir) / LINEAGE_JSON
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")))


def changed(exploit: Mapping[str, Any]) -> str:
    """``learning_rate 0.01 -> 0.012, batch_size 32 -> 64``: what the exploit changed in its trial."""
    parts = [
        f"{name} {_fmt(c.get('old'))} -> {_fmt(c.get('new'))}"
        for name, c in (exploit.get("changes") or {}).items()
        if c.get("old") != c.get("new")
    ]
    return ", ".join(parts) or "nothing"


def rows(exploits: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One table row per exploit: trial, epoch, its value, donor, donor's epoch and value, changes."""
    return [
        [
            e["trial_id"],
            e["epoch"],
            e.get("value"),
            e["donor_id"],
            e["donor_epoch"],
            e.get("donor_value"),
            changed(e),
        ]
        for e in exploits
    ]


HEADER = ("trial", "at epoch", "its value", "copied trial", "its epoch", "donor value", "changed")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)
