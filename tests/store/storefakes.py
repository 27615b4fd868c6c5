"""Fill a store with made-up sweeps, trials and epochs: no Ray, no training."""

from __future__ import annotations

from typing import Any

from tuning_service.store import Store


def add_sweep(
    store: Store,
    sweep_id: str,
    *,
    job: str = "digits",
    metric: str = "val_accuracy",
    mode: str = "max",
    trials: dict[str, tuple[str, list[float | None]]] | None = None,
    finish: str | None = "finished",
    sweep_dir: str | None = None,
    **fields: Any,
) -> None:
    """``trials``: trial id -> (status, per-epoch metric values; None for a diverged epoch)."""
    store.create_sweep(
        sweep_id,
        job=job,
        job_ref=fields.pop("job_ref", job),
        metric=metric,
        mode=mode,
        searcher=fields.pop("searcher", "random"),
        scheduler=fields.pop("scheduler", "fifo"),
        seed=fields.pop("seed", 0),
        space={"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
        spec=fields.pop("spec", {"job": job}),
        versions={"tuning-service": "0.1.0", "keras": "3"},
        num_samples=len(trials or {}),
        max_epochs=3,
        sweep_dir=sweep_dir,
        **fields,
    )
    for n, (trial_id, (status, values)) in enumerate((trials or {}).items()):
        store.start_trial(sweep_id, trial_id, {"learning_rate": 0.001 * (n + 1), "units": 16 * (n + 1)})
        for epoch, value in enumerate(values, 1):
            store.record_epoch(
                sweep_id,
                trial_id,
                epoch,
                mode=mode,
                value=value,
                diverged=value is None,
                metrics={metric: value, "loss": 1.0 / epoch},
                node={"node_ip": "127.0.0.1", "hostname": "testhost"},
            )
        if status != "running":
            store.finish_trial(
                sweep_id, trial_id, status, message="ValueError: boom" if status == "errored" else None
            )
    if finish:
        store.finish_sweep(sweep_id, finish)
