"""Rich renderings for the terminal: the live sweep view and the leaderboard."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tuning_service.core.progress import Snapshot
from tuning_service.core.results import SweepResult, tally


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


# Piped output (cron mail, journald, a file) is never wrapped: one event, one line, however long.
UNWRAPPED_WIDTH = 10_000


def console_for(*, stderr: bool = False) -> Console:
    """A Rich console for stdout (results) or stderr (progress).

    Markup is off: job descriptions, configs and messages are shown as written (a
    ``[/b]`` in them is text, not a style, and cannot break the output). On a terminal
    Rich fits its width; piped, nothing is wrapped or cropped.
    """
    console = Console(stderr=stderr, markup=False)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, markup=False, width=UNWRAPPED_WIDTH, soft_wrap=True)


def stdout_console() -> Console:
    """The console results are printed to."""
    return console_for()


def snapshot_view(s: Snapshot) -> Group:
    """One compact block: counts, best so far and elapsed time."""
    best = f"{s.best:.4f}" if s.best is not None else "-"
    line = Text.assemble(
        ("sweep ", "bold"),
        f"{s.finished}/{s.total} trials  ",
        ("running ", "cyan"),
        f"{s.running}  ",
        ("done ", "green"),
        f"{s.completed}  ",
        ("stopped early ", "yellow"),
        f"{s.stopped}  ",
        ("diverged ", "red"),
        f"{s.diverged}  ",
        ("errored ", "red"),
        f"{s.errored}  ",
        f"epochs {s.epochs}  elapsed {s.elapsed:.0f}s",
    )
    best_line = Text.assemble((f"best {s.metric} ", "bold"), best, "  ", _short(s.best_config))
    return Group(line, best_line)


def snapshot_line(s: Snapshot) -> str:
    """The same as one plain line, for logs and non-terminal output."""
    best = f"{s.best:.4f}" if s.best is not None else "-"
    return (
        f"{s.finished}/{s.total} trials: {s.completed} done, {s.stopped} stopped early, "
        f"{s.diverged} diverged, {s.errored} errored{f', {s.infeasible} infeasible' if s.infeasible else ''}; best {s.metric} {best}; {s.elapsed:.0f}s"
    )


def _short(config: dict[str, Any] | None) -> str:
    if not config:
        return ""
    return " ".join(f"{k}={_fmt(v)}" for k, v in config.items())


def leaderboard_table(result: SweepResult, top: int = 10) -> Table:
    """The top trials with their configuration, best first."""
    trials = result.leaderboard(top)
    keys: list[str] = []
    for trial in trials:
        keys += [k for k in trial.config if k not in keys]
    table = Table(title=f"{result.job} - sweep {result.sweep_id} - top {len(trials)} of {len(result.trials)}")
    for col in ("#", "trial", result.metric, "epoch", "epochs", "status", *keys):
        table.add_column(col, justify="right" if col in ("#", result.metric, "epoch", "epochs") else "left")
    for rank, t in enumerate(trials, 1):
        value = f"{t.value:.4f}" if t.value is not None else "-"
        status = t.status if not t.error else f"{t.status}: {t.error[:60]}"
        table.add_row(
            str(rank),
            t.trial_id,
            value,
            _fmt(t.best_epoch or "-"),
            str(t.epochs),
            status,
            *(_fmt(t.config.get(k, "")) for k in keys),
        )
    return table


def print_summary(console: Console, result: SweepResult) -> None:
    console.print(leaderboard_table(result))
    console.print(f"{tally(result.counts())}, {result.epochs} epochs, {result.wall_time_s:.1f}s wall time")
    chosen = result.chosen
    if chosen is not None:
        how = f" (picked: {result.pick})" if result.pick else ""
        console.print(
            f"best {result.metric} {chosen.value:.4f}{how} -> {result.sweep_dir / 'best_config.json'}"
        )
    elif result.best is not None:
        console.print(
            f"no Pareto-front member meets --pick {result.pick!r}: best_config.json not written "
            f"(the front is in {result.sweep_dir / 'pareto_front.json'})"
        )
