"""The live recorder's writes, as statements built once per database dialect.

The driver records a trial's start, each of its epochs and its end in the step that hands
the trial its next epoch. Building and keying an INSERT ... ON CONFLICT and an UPDATE with
subqueries was most of each write's cost; built once with bound parameters, a statement is
keyed once and its compiled form reused (an epoch's write 0.25-0.28 ms instead of 1.30-1.32 ms
on SQLite, `python -m benchmarks.store_writes`).

Bound parameters are named ``b_<column>`` (SQLAlchemy reserves a table's column names in
VALUES and SET); `bound` makes the parameters of a call.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from tuning_service.store import schema
from tuning_service.store.engine import insert_for
from tuning_service.store.schema import RUNNING

# Columns of a trial's row that an epoch or an outcome sets only when it names them.
TRIAL_EXTRAS = ("node_ip", "node_id", "hostname", "train_time_s", "duration_s", "checkpoint", "config")


def bound(**values: Any) -> dict[str, Any]:
    """The parameters of a statement of this module."""
    return {f"b_{name}": value for name, value in values.items()}


def _b(column: sa.Column[Any]) -> Any:
    return sa.bindparam(f"b_{column.name}", type_=column.type)


def _this_trial(table: sa.Table) -> Any:
    return sa.and_(table.c.sweep_id == _b(table.c.sweep_id), table.c.trial_id == _b(table.c.trial_id))


def _new_trial(dialect: str, *also: str) -> Any:
    """An INSERT of a RUNNING trial without epochs: its ids, config, updated_at and ``also``."""
    t = schema.trials
    names = ("sweep_id", "trial_id", "config", "updated_at", *also)
    return insert_for(dialect, t).values(status=RUNNING, epochs=0, **{name: _b(t.c[name]) for name in names})


@cache
def hold_trial(dialect: str) -> Any:
    """Insert the trial's row if absent, else touch it: either way it is locked until commit.

    Parameters: sweep_id, trial_id, config, updated_at.
    """
    stmt = _new_trial(dialect)
    return stmt.on_conflict_do_update(
        index_elements=["sweep_id", "trial_id"], set_={"updated_at": stmt.excluded.updated_at}
    )


@cache
def start_trial(dialect: str) -> Any:
    """A trial (re)started: RUNNING with its config; its first start time is kept.

    Parameters: sweep_id, trial_id, config, started_at, updated_at.
    """
    t = schema.trials
    stmt = _new_trial(dialect, "started_at")
    return stmt.on_conflict_do_update(
        index_elements=["sweep_id", "trial_id"],
        set_={
            "config": stmt.excluded.config,
            "status": RUNNING,
            "message": None,
            "started_at": sa.func.coalesce(t.c.started_at, stmt.excluded.started_at),
            "updated_at": stmt.excluded.updated_at,
        },
    )


@cache
def drop_epochs_after() -> Any:
    """Delete a trial's epochs after one (a run it no longer continues). Parameters: sweep_id,
    trial_id, epoch."""
    e = schema.epochs
    return sa.delete(e).where(_this_trial(e), e.c.epoch > _b(e.c.epoch))


@cache
def upsert_epoch(dialect: str) -> Any:
    """Insert or replace one epoch's row.

    Parameters: sweep_id, trial_id, epoch, value, diverged, metrics, recorded_at.
    """
    e = schema.epochs
    stmt = insert_for(dialect, e).values(
        sweep_id=_b(e.c.sweep_id),
        trial_id=_b(e.c.trial_id),
        epoch=_b(e.c.epoch),
        value=_b(e.c.value),
        diverged=_b(e.c.diverged),
        metrics=_b(e.c.metrics),
        recorded_at=_b(e.c.recorded_at),
    )
    return stmt.on_conflict_do_update(
        index_elements=["sweep_id", "trial_id", "epoch"],
        set_={k: stmt.excluded[k] for k in ("value", "diverged", "metrics", "recorded_at")},
    )


@cache
def refresh_trial(mode: str, extras: tuple[str, ...]) -> Any:
    """Recompute a trial's best value, best epoch and epoch count from its epoch rows, and set
    ``extras`` (of `TRIAL_EXTRAS`).

    Parameters: sweep_id, trial_id, updated_at and each of ``extras``.
    """
    t, e = schema.trials, schema.epochs
    mine = _this_trial(e)
    ranked = sa.and_(mine, e.c.value.is_not(None), e.c.diverged.is_(False))
    order = (e.c.value.desc() if mode == "max" else e.c.value.asc(), e.c.epoch.asc())
    best = sa.select(e.c.value, e.c.epoch).where(ranked).order_by(*order).limit(1)
    return (
        sa.update(t)
        .where(_this_trial(t))
        .values(
            value=best.with_only_columns(e.c.value).scalar_subquery(),
            best_epoch=best.with_only_columns(e.c.epoch).scalar_subquery(),
            epochs=sa.select(sa.func.max(e.c.epoch)).where(mine).scalar_subquery(),
            updated_at=_b(t.c.updated_at),
            **_extras(extras),
        )
    )


@cache
def set_checkpoint() -> Any:
    """A trial's newest checkpoint. Parameters: sweep_id, trial_id, checkpoint, updated_at."""
    t = schema.trials
    return (
        sa.update(t)
        .where(_this_trial(t))
        .values(checkpoint=_b(t.c.checkpoint), updated_at=_b(t.c.updated_at))
    )


@cache
def finish_trial(extras: tuple[str, ...]) -> Any:
    """A trial's outcome, and ``extras`` (of `TRIAL_EXTRAS`).

    Parameters: sweep_id, trial_id, status, message, ended_at, updated_at and each of ``extras``.
    """
    t = schema.trials
    return (
        sa.update(t)
        .where(_this_trial(t))
        .values(
            status=_b(t.c.status),
            message=_b(t.c.message),
            ended_at=_b(t.c.ended_at),
            updated_at=_b(t.c.updated_at),
            **_extras(extras),
        )
    )


def _extras(extras: tuple[str, ...]) -> dict[str, Any]:
    unknown = set(extras) - set(TRIAL_EXTRAS)
    if unknown:
        raise ValueError(f"not a trial column an epoch or an outcome sets: {sorted(unknown)}")
    return {name: _b(schema.trials.c[name]) for name in extras}
