"""HTML reports: figures from made-up trials, a real sweep's report in headless Chromium, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from browser import ARTIFACTS, chromium_path, headless_chromium

from tuning_service.cli import main
from tuning_service.core.results import SweepResult, TrialSummary, load_result
from tuning_service.core.space import Choice, Float, Space
from tuning_service.sweeps.report import render_html, write_report

SPACE = Space({"learning_rate": Float(1e-4, 1e-1, log=True), "activation": Choice(("relu", "tanh"))})
# The figures of a single-objective sweep's report, in page order.
FIGURES = ("best_so_far", "learning_curves", "parallel_coordinates", "importance", "rung_stops", "slot_usage")


def _trial(i: int, status: str, values: list[float | None], start: float) -> TrialSummary:
    history = [
        {
            "training_iteration": e + 1,
            "val_accuracy": v,
            "ended_at": start + e + 1.0,
            "time_this_iter_s": 1.0,
            "diverged": status == "diverged" and e == len(values) - 1,
        }
        for e, v in enumerate(values)
    ]
    finite = [v for v in values if v is not None]
    best = max(finite) if finite and status != "diverged" else None
    return TrialSummary(
        trial_id=f"t{i}",
        config={"learning_rate": 10 ** -(1 + i % 3), "activation": ("relu", "tanh")[i % 2]},
        status=status,
        value=best,
        best_epoch=values.index(best) + 1 if best is not None else None,
        epochs=len(values),
        train_time_s=float(len(values)),
        history=history,
    )


def _made_up(tmp_path: Path, trials: list[TrialSummary]) -> SweepResult:
    return SweepResult(
        sweep_id="s1",
        job="toy",
        metric="val_accuracy",
        mode="max",
        searcher="random",
        scheduler="asha",
        seed=0,
        sweep_dir=tmp_path,
        trials=trials,
        wall_time_s=10.0,
        max_epochs=3,
        space=SPACE.to_dict(),
    )


def test_a_report_of_made_up_trials_has_every_section(tmp_path):
    trials = [
        _trial(0, "completed", [0.5, 0.7, 0.9], 0.0),
        _trial(1, "completed", [0.4, 0.6, 0.8], 0.5),
        _trial(2, "stopped early", [0.2], 1.0),
        _trial(3, "diverged", [0.3, None], 2.0),
        _trial(4, "completed", [0.6, 0.65, 0.7], 3.0),
    ]
    out = write_report(_made_up(tmp_path, trials), SPACE, tmp_path / "r.html", tmp_path / "png")
    page = out.read_text()
    for fig in FIGURES:
        assert f'id="fig-{fig}"' in page and (tmp_path / "png" / f"{fig}.png").stat().st_size > 1000
    assert "<script" not in page and not re.search(r"""(src|href)=["']https?:""", page)  # works offline
    assert "0.9000" in page and "1 diverged" in page and "1 stopped early" in page


def test_figures_drawn_by_this_process_and_a_copy_are_those_one_process_draws(tmp_path, monkeypatch):
    """Where this process may fork (one thread, as in `-m "not integration"`), the first call
    shares the figures with a forked copy; the second draws them all here."""
    import matplotlib as mpl

    from tuning_service.core import forked
    from tuning_service.sweeps.report import curves, drawn_figures

    trials = [
        _trial(i, ("completed", "stopped early")[i % 2], [0.3 + i / 40, 0.4 + i / 40][: 1 + i % 2], i / 2)
        for i in range(12)
    ]
    result = _made_up(tmp_path, trials)
    with mpl.rc_context({"svg.hashsalt": "report"}):  # ids from content, not a random salt
        shared = drawn_figures(result, SPACE, curves(result))
        monkeypatch.setattr(forked, "processes_available", lambda: 1)
        alone = drawn_figures(result, SPACE, curves(result))
    undated = [{k: re.sub(r"<dc:date>.*?</dc:date>", "", v) for k, v in d.items()} for d in (shared, alone)]
    assert list(shared) == list(alone) == list(FIGURES)
    assert undated[0] == undated[1]


def test_a_sweep_with_no_finished_trial_is_reported_as_such(tmp_path):
    result = _made_up(tmp_path, [_trial(0, "diverged", [None], 0.0)])
    page = render_html(result, SPACE, {})
    assert "No trial finished with a valid metric" in page


def test_importance_is_judged_without_loading_scikit_learn(tmp_path):
    # Optuna's importance module loads scikit-learn for its fANOVA and impurity evaluators:
    # 2 CPU s of a new `report` process, for evaluators the report does not use.
    script = textwrap.dedent(
        """
        import json, sys
        from tuning_service.core.results import SweepResult, TrialSummary
        from tuning_service.core.space import Choice, Float, Space
        from tuning_service.sweeps.report import param_importance

        space = Space({"learning_rate": Float(1e-4, 1e-1, log=True), "activation": Choice(("relu", "tanh"))})
        trials = [
            TrialSummary(
                trial_id=f"t{i}", config={"learning_rate": 10 ** -(1 + i % 3), "activation": ("relu", "tanh")[i % 2]},
                status="completed", value=0.5 + 0.1 * (i % 3), best_epoch=1, epochs=1, train_time_s=1.0, history=[],
            )
            for i in range(24)
        ]
        result = SweepResult(
            sweep_id="s1", job="toy", metric="val_accuracy", mode="max", searcher="random", scheduler="asha",
            seed=0, sweep_dir=sys.argv[1], trials=trials, wall_time_s=1.0, max_epochs=1, space=space.to_dict(),
        )
        print(json.dumps({"scores": param_importance(result, space), "sklearn": "sklearn" in sys.modules}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["sklearn"] is False, done.stderr
    # The learning rate alone decides the value: it is the important one.
    assert found["scores"]["learning_rate"] > found["scores"].get("activation", 0.0)


@pytest.mark.integration
@pytest.mark.slow
def test_a_real_asha_sweep_report_renders_in_headless_chromium(ray_local, tmp_path, capsys):
    storage = tmp_path / "results"
    assert (
        main(
            [
                "-q",
                "run",
                "digits",
                "--searcher",
                "random",
                "--scheduler",
                "asha",
                "--num-samples",
                "4",
                "--max-epochs",
                "3",
                "--data-limit",
                "300",
                "--storage",
                str(storage),
            ]
        )
        == 0
    )
    (sweep_dir,) = storage.glob("digits/*")
    capsys.readouterr()
    assert main(["report", sweep_dir.name, "--storage", str(storage), "--png", str(tmp_path / "png")]) == 0
    report = Path(capsys.readouterr().out.strip())
    assert report == sweep_dir / "report.html"
    assert len(list((tmp_path / "png").glob("*.png"))) == 6
    assert load_result(sweep_dir).scheduler == "asha"

    with headless_chromium(chromium_path()) as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.route(re.compile(r"^https?://"), lambda route: (errors.append(route.request.url), route.abort()))
        page.goto(report.as_uri())
        sizes = page.eval_on_selector_all(
            ".figure svg",
            "els => els.map(e => [e.parentElement.id, e.getBoundingClientRect().width,"
            " e.getBoundingClientRect().height, e.querySelectorAll('path').length])",
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert errors == []
    assert [s[0] for s in sizes] == [
        "fig-best_so_far",
        "fig-learning_curves",
        "fig-parallel_coordinates",
        "fig-importance",
        "fig-rung_stops",
        "fig-slot_usage",
    ]
    assert all(w > 300 and h > 200 and paths > 5 for _, w, h, paths in sizes)


def test_report_bad_input_exits_2(tmp_path, capsys):
    storage = tmp_path / "results"
    assert main(["report", "nosuch", "--storage", str(storage)]) == 2
    assert "unknown sweep 'nosuch'" in capsys.readouterr().err
    assert main(["report", "--storage", str(storage)]) == 2
    assert "give a SWEEP id or --job JOB" in capsys.readouterr().err
    assert main(["report", "--job", "digits", "--storage", str(storage)]) == 2
    assert "no finished sweep of job 'digits'" in capsys.readouterr().err
    assert not storage.exists()


def test_report_to_an_unwritable_path_exits_2_and_writes_nothing(tmp_path, capsys):
    sweep_dir = tmp_path / "results" / "toy" / "s1"
    sweep_dir.mkdir(parents=True)
    from tuning_service.core.results import write_outputs

    write_outputs(_made_up(sweep_dir, [_trial(0, "completed", [0.5, 0.6], 0.0)]))
    target = tmp_path / "missing-dir" / "r.html"
    assert main(["report", str(sweep_dir), "-o", str(target)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert not target.parent.exists()
