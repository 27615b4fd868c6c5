"""A small results database for the dashboard's tests, written through the store's own API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "activation": {"type": "choice", "values": ["relu", "tanh"]},
}
FINISHED_ID, RUNNING_ID, OTHER_JOB_ID = "20260301-0900-aaaa", "20260302-0900-bbbb", "20260303-0900-cccc"
# (trial, outcome, per-epoch values): every outcome the pages tell apart.
TRIALS = [
    ("t0", "completed", [0.50, 0.70, 0.90]),
    ("t1", "completed", [0.40, 0.60, 0.80]),
    ("t2", "stopped early", [0.20]),
    ("t3", "diverged", [0.30, None]),
    ("t4", "errored", [0.10]),
    ("t5", "completed", [0.60, 0.65, 0.70]),
]


def _sweep(store, sweep_id: str, job: str, *, started: datetime, num_samples: int) -> None:
    store.create_sweep(
        sweep_id,
        job=job,
        job_ref=job,
        metric="val_accuracy",
        mode="max",
        searcher="random",
        scheduler="asha",
        seed=0,
        space=SPACE,
        spec={"job": job},
        versions={"tuning-service": "test"},
        num_samples=num_samples,
        max_epochs=3,
        started_at=started,
    )


def fill(store) -> None:
    """Three sweeps (one finished, one running, one of another job), two nightly runs, a lock."""
    from tuning_service.sweeps.nightly import history
    from tuning_service.sweeps.nightly.change import summarize

    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    _sweep(store, FINISHED_ID, "digits", started=start, num_samples=len(TRIALS))
    for i, (trial_id, status, values) in enumerate(TRIALS):
        config = {"learning_rate": 10 ** -(1 + i % 3), "activation": ("relu", "tanh")[i % 2]}
        store.start_trial(FINISHED_ID, trial_id, config, started_at=start + timedelta(seconds=i))
        for epoch, value in enumerate(values, 1):
            store.record_epoch(
                FINISHED_ID,
                trial_id,
                epoch,
                mode="max",
                value=value,
                diverged=value is None,
                metrics={"val_accuracy": value, "loss": 1.0 - (value or 0.0)},
                node={"node_id": f"node{i % 2}", "node_ip": "127.0.0.1"},
            )
        store.finish_trial(FINISHED_ID, trial_id, status, message="made-up" if status == "errored" else None)
    store.finish_sweep(FINISHED_ID, "finished")

    _sweep(store, RUNNING_ID, "digits", started=start + timedelta(days=1), num_samples=4)
    store.start_trial(RUNNING_ID, "r0", {"learning_rate": 0.01, "activation": "relu"})
    store.record_epoch(RUNNING_ID, "r0", 1, mode="max", value=0.55, metrics={"val_accuracy": 0.55})
    store.start_trial(RUNNING_ID, "r1", {"learning_rate": 0.001, "activation": "tanh"})

    _sweep(store, OTHER_JOB_ID, "churn", started=start + timedelta(days=2), num_samples=1)
    store.start_trial(OTHER_JOB_ID, "c0", {"learning_rate": 0.01, "activation": "relu"})
    store.record_epoch(OTHER_JOB_ID, "c0", 1, mode="max", value=0.75, metrics={"val_accuracy": 0.75})
    store.finish_trial(OTHER_JOB_ID, "c0", "completed")
    store.finish_sweep(OTHER_JOB_ID, "finished")

    # Nightly runs of digits: two finished (the second better, with another learning rate and a
    # warm start), then a third still running, which holds the sweep's lock.
    earlier: list = []
    for n, (sweep_id, value, lr) in enumerate(
        ((FINISHED_ID, 0.85, 0.1), (FINISHED_ID, 0.9, 0.01), (RUNNING_ID, None, None))
    ):
        when = start + timedelta(days=n)
        started = history.start_run(
            store, "nightly-digits", job="digits", scheduled_for=when, trigger="scheduler", ttl_s=3600
        )
        run = started.run
        if value is None:
            history.update_run(store, run.run_id, sweep_id=sweep_id, warm_start=5)
            break
        change = summarize(
            name="nightly-digits",
            job="digits",
            metric="val_accuracy",
            mode="max",
            value=value,
            config={"learning_rate": lr, "activation": "relu"},
            run_id=run.run_id,
            sweep_id=sweep_id,
            scheduled_for=when,
            earlier=earlier,
        )
        finished = history.finish_run(
            store,
            run.run_id,
            "finished",
            sweep_id=sweep_id,
            warm_start=3 * n,
            metric="val_accuracy",
            mode="max",
            best_value=value,
            change=change,
        )
        started.lock.release()
        earlier.insert(0, finished)
