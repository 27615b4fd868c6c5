"""Gather the scenarios' JSON files into one Markdown report: the tables of benchmarks/RESULTS.md.

python -m benchmarks.summary [--from tuning-results/benchmarks] [--copy-to benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.cli import DEFAULT_OUT

# Scenario directories under --from, in report order, and the file each writes.
SCENARIOS = (
    ("telco", "telco_churn"),
    ("pima_diabetes", "pima_diabetes"),
    ("digits", "digits"),
    ("overhead", "overhead"),
    ("driver_scale", "driver_scale"),
    ("epoch_cost", "epoch_cost"),
    ("startup", "startup"),
    ("store_scale", "store_scale"),
    ("store_writes", "store_writes"),
    ("dashboard", "dashboard"),
    ("chaos", "chaos"),
    ("multiobjective", "multiobjective"),
)


def collect(root: Path, *, smoke: bool = False) -> list[tuple[str, dict[str, Any], str, Path]]:
    """(scenario, JSON data, Markdown table, its directory) for every scenario that has run."""
    found = []
    for directory, stem in SCENARIOS:
        folder = root / (f"{directory}-smoke" if smoke else directory)
        data_path, table_path = folder / f"{stem}.json", folder / f"{stem}.md"
        if data_path.exists() and table_path.exists():
            data = json.loads(data_path.read_text(encoding="utf-8"))
            found.append((directory, data, table_path.read_text(encoding="utf-8").strip(), folder))
    return found


def render(found: list[tuple[str, dict[str, Any], str, Path]], plots: dict[str, str]) -> str:
    if not found:
        return "No scenario has written results yet.\n"
    first = found[0][1]
    machine, versions = first["machine"], first["versions"]
    lines = [
        f"Machine: {machine.get('cpus')} CPU cores ({machine.get('cpu_model', 'unknown model')}), "
        f"{machine.get('memory_gib', '?')} GiB memory, {machine.get('gpus', 0)} GPUs; "
        f"{machine.get('platform')}, Python {machine.get('python')}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
    ]
    for scenario, data, table, _ in found:
        lines += [table, "", f"Command: `{data['command']}`, finished {data['date']}.", ""]
        if scenario in plots:
            lines += [f"![{scenario}: best validation accuracy so far]({plots[scenario]})", ""]
    return "\n".join(lines)


def copy_artifacts(
    found: list[tuple[str, dict[str, Any], str, Path]], dest: Path, relative_to: Path
) -> dict[str, str]:
    """Copy each scenario's JSON and plot to ``dest``; return the plots' paths relative to the report."""
    dest.mkdir(parents=True, exist_ok=True)
    plots = {}
    for scenario, _, _, folder in found:
        for path in [*folder.glob("*.json"), *folder.glob("*.png")]:
            if path.name.startswith("variant-"):
                continue
            shutil.copy2(path, dest / path.name)
            if path.suffix == ".png":
                plots[scenario] = str((dest / path.name).relative_to(relative_to))
    return plots


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.summary", description=(__doc__ or "").splitlines()[0]
    )
    ap.add_argument("--from", dest="root", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--copy-to", type=Path, help="copy JSON files and plots here (next to RESULTS.md)")
    ap.add_argument("--smoke", action="store_true", help="gather the --smoke runs instead")
    args = ap.parse_args(argv)
    found = collect(args.root, smoke=args.smoke)
    plots = copy_artifacts(found, args.copy_to, args.copy_to.parent) if args.copy_to else {}
    sys.stdout.write(render(found, plots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
