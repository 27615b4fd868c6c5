"""Reports of many trials: summarised figures that say what they show, the same picture for few trials."""

from __future__ import annotations

import random

import pytest

from tuning_service.core.results import SweepResult, TrialSummary
from tuning_service.sweeps import plots
from tuning_service.sweeps.plots import TrialCurve
from tuning_service.sweeps.report import LEADERBOARD_ROWS, curves, render_html, write_report


def _many(tmp_path, n: int) -> SweepResult:
    rng = random.Random(0)
    trials = []
    for i in range(n):
        epochs = rng.randint(1, 4)
        values = [rng.random() for _ in range(epochs)]
        status = "completed" if epochs == 4 else rng.choice(("stopped early", "errored"))
        history = [
            {"training_iteration": e + 1, "val_accuracy": v, "ended_at": i + e + 1.0, "time_this_iter_s": 1.0}
            for e, v in enumerate(values)
        ]
        best = max(values) if status != "errored" else None
        trials.append(
            TrialSummary(
                trial_id=f"t{i:04d}",
                config={"learning_rate": 10 ** rng.uniform(-4, -1), "units": rng.choice((16, 32, 64))},
                status=status,
                value=best,
                best_epoch=values.index(best) + 1 if best is not None else None,
                epochs=epochs,
                train_time_s=float(epochs),
                history=history,
            )
        )
    return SweepResult(
        sweep_id="s1", job="toy", metric="val_accuracy", mode="max", searcher="random", scheduler="asha",
        seed=0, sweep_dir=tmp_path, trials=trials, wall_time_s=10.0, max_epochs=4,
    )  # fmt: skip


def _curve(i: int, value: float, metric: list[float]) -> TrialCurve:
    return TrialCurve(
        trial_id=f"t{i}",
        status="completed",
        config={"units": i},
        value=value,
        epochs=list(range(1, len(metric) + 1)),
        metric=metric,
        ends=[float(i + e) for e in range(1, len(metric) + 1)],
        durations=[1.0] * len(metric),
    )


def test_a_report_of_many_trials_says_what_each_summarised_figure_shows(tmp_path):
    result = _many(tmp_path, plots.DENSE_TRIALS + 50)
    page = write_report(result, None, tmp_path / "r.html").read_text()
    assert f"the best {plots.TOP_CURVES} of {len(result.trials)} trials" in page
    assert "all trials: 10-90 %" in page and "<image" in page  # the band, the rasterized lines
    assert f"leaderboard: the best {LEADERBOARD_ROWS} of {len(result.trials)} trials" in page
    best = result.leaderboard()[0]
    # 10 summary rows, the leaderboard's header and its rows
    assert page.count("<tr>") == 11 + LEADERBOARD_ROWS and f'<td class="">{best.trial_id}</td>' in page


def test_a_small_sweep_draws_every_trial_as_before(tmp_path):
    result = _many(tmp_path, 20)
    data = curves(result)
    fig = plots.learning_curves(data, result.metric, result.mode)
    drawn = [
        line for line in fig.axes[0].get_lines() if len(line.get_xdata()) > 1 or line.get_marker() == "o"
    ]
    assert len(drawn) == sum(1 for c in data if c.metric)
    assert fig.axes[0].get_title() == "learning curves"
    page = render_html(result, None, {})
    assert "<h2>leaderboard</h2>" in page and page.count("<tr>") == 11 + 20


def test_learning_curves_of_many_trials_draw_the_best_over_a_band():
    trials = [_curve(i, i / 1000, [0.1, i / 1000]) for i in range(plots.DENSE_TRIALS + 1)]
    ax = plots.learning_curves(trials, "val_accuracy", "max").axes[0]
    labels = {line.get_label() for line in ax.get_lines()}
    assert "all trials: median" in labels
    tops = [line for line in ax.get_lines() if line.get_label() != "all trials: median"]
    assert len(tops) == plots.TOP_CURVES
    assert max(line.get_ydata()[-1] for line in tops) == pytest.approx(plots.DENSE_TRIALS / 1000)
    assert min(line.get_ydata()[-1] for line in tops) == pytest.approx((plots.DENSE_TRIALS - 49) / 1000)
    low = plots.learning_curves(trials, "val_loss", "min").axes[0]
    assert (
        min(line.get_ydata()[-1] for line in low.get_lines() if line.get_label() != "all trials: median") == 0
    )


def test_best_so_far_keeps_the_same_steps_from_fewer_points():
    trials = [_curve(0, 0.9, [0.5, 0.4, 0.7, 0.7, 0.6, 0.9, 0.8])]
    by_time, by_epochs = plots.best_so_far(trials, "val_accuracy", "max").axes
    (line,) = by_time.get_lines()
    assert list(line.get_xdata()) == [1.0, 3.0, 6.0, 7.0] and list(line.get_ydata()) == [0.5, 0.7, 0.9, 0.9]
    (line,) = by_epochs.get_lines()
    assert list(line.get_xdata()) == [1, 3, 6, 7]


def test_slot_usage_per_interval_keeps_the_busy_time():
    # Two slots busy for 10 s, then one for 10 s: the mean per interval keeps the area under the steps.
    times, means = plots._per_interval([0.0, 10.0, 20.0], [2, 1, 0], 4)
    assert times == [0.0, 5.0, 10.0, 15.0] and means == [2.0, 2.0, 1.0, 1.0]
    times, means = plots._per_interval([0.0, 1.0, 3.0], [1, 3, 0], 2)
    assert means == pytest.approx([(1 * 1 + 3 * 0.5) / 1.5, 3.0])


def test_parallel_coordinates_of_very_many_trials_draw_a_sample_spread_over_the_ranks():
    n = plots.PARALLEL_LINES * 3 + 7
    trials = [_curve(i, i / n, [i / n]) for i in range(n)]
    ax = plots.parallel_coordinates(trials, "val_accuracy", "max").axes[0]
    assert ax.get_title() == f"configurations vs metric ({plots.PARALLEL_LINES:,} of {n:,} finished trials)"
    (lines,) = ax.collections
    metric_axis = [segment[-1][1] for segment in lines.get_segments()]  # scaled 0 (worst) .. 1 (best)
    assert len(metric_axis) == plots.PARALLEL_LINES
    assert max(metric_axis) == 1.0 and min(metric_axis) == 0.0  # the best and the worst among them
    # Spread evenly: every tenth of the ranks holds a tenth of the lines.
    tenths = [
        sum(1 for y in metric_axis if k / 10 <= y < (k + 1) / 10 or (k == 9 and y == 1.0)) for k in range(10)
    ]
    assert all(abs(c - plots.PARALLEL_LINES / 10) <= 2 for c in tenths), tenths
