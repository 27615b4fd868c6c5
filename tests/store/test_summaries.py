"""Sweep summaries from the database's counts and best trials equal those from every trial row."""

from __future__ import annotations

from storefakes import add_sweep

from tuning_service.store import RANKED
from tuning_service.sweeps.aggregate import rank_trials, status_counts, summarize


def _from_every_trial(store, sweep):
    """What a summary held before the database did the work: all trials loaded and ranked here."""
    trials = store.trials([sweep.sweep_id])
    ranked = rank_trials(trials, sweep.mode)
    best = ranked[0] if ranked and ranked[0].status in RANKED and ranked[0].value is not None else None
    return status_counts(trials), best


def test_summaries_match_a_ranking_of_every_trial(store):
    # Ties (b and c), unranked trials better than the best (diverged, errored), both modes, a sweep
    # without any ranked trial and one without trials.
    add_sweep(
        store,
        "s1",
        trials={
            "c": ("completed", [0.5, 0.8]),
            "b": ("stopped early", [0.8]),
            "a": ("completed", [0.6, 0.7]),
            "d": ("diverged", [0.99, None]),
            "e": ("errored", [0.95]),
            "f": ("running", [0.3]),
        },
    )
    add_sweep(
        store,
        "s2",
        metric="val_loss",
        mode="min",
        trials={"x": ("completed", [0.9, 0.4]), "y": ("stopped early", [0.2]), "z": ("errored", [0.1])},
    )
    add_sweep(store, "s3", trials={"only": ("diverged", [None])})
    add_sweep(store, "s4", trials={})
    sweeps = store.sweeps()
    summaries = summarize(store, sweeps)
    assert [s.sweep.sweep_id for s in summaries] == [s.sweep_id for s in sweeps]
    for summary, sweep in zip(summaries, sweeps, strict=True):
        counts, best = _from_every_trial(store, sweep)
        assert (summary.counts, summary.best) == (counts, best), sweep.sweep_id
        assert list(summary.counts) == list(counts)  # the reading order too
    by_id = {s.sweep.sweep_id: s for s in summaries}
    assert by_id["s1"].best.trial_id == "b"  # 0.8 tied with c: the lower trial id
    assert by_id["s2"].best.trial_id == "y" and by_id["s3"].best is None and by_id["s4"].counts == {}
    assert by_id["s1"].tally == "6 (2 completed, 1 stopped early, 1 diverged, 1 errored, 1 running)"


def test_rank_trials_orders_ranked_then_the_rest_by_status(store):
    add_sweep(
        store,
        "s1",
        trials={
            "r": ("running", [0.1]),
            "e": ("errored", [0.9]),
            "a": ("completed", [0.6]),
            "d": ("diverged", [None]),
            "b": ("stopped early", [0.7]),
        },
    )
    trials = store.trials(["s1"])
    assert [t.trial_id for t in rank_trials(trials, "max")] == ["b", "a", "d", "e", "r"]
    assert [t.trial_id for t in rank_trials(trials, "min")] == ["a", "b", "d", "e", "r"]
