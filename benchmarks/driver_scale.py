"""Driver scale: no-op trials with random search and ASHA; trials per second as sweeps grow, and driver memory.

    python -m benchmarks.driver_scale [--smoke] [--out DIR] [--trials 1000,10000]

Each variant and size runs in a fresh process of its own, so its peak memory is its own:
``tuning-service`` is run_sweep with the engine's no-op trainable (results store,
progress and files included), ``ray-tune-direct`` a bare Tuner with the same
searcher, scheduler and steps: the floor Ray Tune sets on this machine. With several
sizes, the target is that the largest sweep's trials per second stay within 20 % of
the smallest's; our sweeps also report their rate in each tenth of the run (trials
ended per second, from the trials' last epochs), which shows any slowdown as the
sweep grows within one run. ``--profile`` profiles each variant's process (the driver) with
cProfile: ``profile-<variant>-<trials>/profile-driver_scale.txt`` lists its top functions
(Tune's experiment snapshot is ``TuneController.checkpoint``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import cli
from benchmarks.reporting import fmt, markdown_table, peak_rss_mib, publish, write_json
from tuning_service.core.errors import InputError
from tuning_service.core.processes import resident_mib

TARGET_S = 60.0  # per 1000 trials
TARGET_FLAT = 0.8  # the largest sweep's trials per second over the smallest's, at least


def _sizes(args: argparse.Namespace) -> tuple[int, int]:
    return (20, 3) if args.smoke else (args.trials[0], args.max_epochs)


def rate_by_tenth(ends: list[float]) -> list[float]:
    """Trials ended per second in each tenth of the span from the first trial's end to the last's."""
    if len(ends) < 20:
        return []
    first, last = min(ends), max(ends)
    width = (last - first) / 10
    if width <= 0:
        return []
    counts = [0] * 10
    for end in ends:
        counts[min(9, int((end - first) / width))] += 1
    return [c / width for c in counts]


def ours(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """run_sweep with the engine's NoopTrainable: our whole driver path, no training."""
    from benchmarks.ours import engine_support
    from tuning_service import testing
    from tuning_service.core.spec import SweepSpec
    from tuning_service.sweeps.runner import run_sweep

    support = engine_support()
    if not (support["trainable"] and support["noop_trainable"]):
        raise Unsupported(
            "engine lacks run_sweep(trainable=) or tuning_service.testing.NoopTrainable: "
            f"{ {k: support[k] for k in ('trainable', 'noop_trainable')} }"
        )
    trials, epochs = _sizes(args)
    job = testing.tiny_job(max_epochs=epochs)
    spec = SweepSpec(
        job=job.name,
        searcher="random",
        scheduler="asha",
        num_samples=trials,
        max_epochs=epochs,
        cpus_per_trial=args.cpus_per_trial,
        seed=args.seed,
        **({"checkpoint_frequency": args.checkpoint_frequency} if args.checkpoint_frequency else {}),
        storage=str(workdir),
    )
    started = time.perf_counter()
    result = run_sweep(spec, job=job, trainable=testing.NoopTrainable)  # type: ignore[call-arg]
    wall = time.perf_counter() - started
    ends = [
        float(t.history[-1]["ended_at"]) for t in result.trials if t.history and t.history[-1].get("ended_at")
    ]
    return {
        "wall_s": wall,
        "trials": len(result.trials),
        "steps": result.epochs,
        "counts": result.counts(),
        "rate_by_tenth": rate_by_tenth(ends),
    }


def ray_tune_direct(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """A bare Ray Tune run of the same shape (embedded Ray started and stopped inside the timing)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    trials, epochs = _sizes(args)
    started = time.perf_counter()
    with cli.local_ray():
        tuner = tune.Tuner(
            tune.with_resources(_noop_step_class(), {"cpu": args.cpus_per_trial}),
            param_space={"learning_rate": tune.loguniform(1e-3, 3e-2), "units": tune.choice([8, 16])},
            tune_config=tune.TuneConfig(
                metric="val_accuracy",
                mode="max",
                scheduler=ASHAScheduler(max_t=epochs, grace_period=1, reduction_factor=3),
                num_samples=trials,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=str(workdir), stop={"training_iteration": epochs}, verbose=0
            ),
        )
        grid = tuner.fit()
    wall = time.perf_counter() - started
    steps = sum(int((r.metrics or {}).get("training_iteration", 0)) for r in grid)
    return {"wall_s": wall, "trials": len(grid), "steps": steps}


class Unsupported(Exception):
    """The engine in this checkout cannot run the variant."""


def _noop_step_class() -> type:
    """A class built inside a function: Ray pickles it by value, so workers need not import benchmarks."""
    from ray import tune

    class _NoopStep(tune.Trainable):
        """Returns a made-up accuracy at once; reset_config lets Tune reuse the actor."""

        def setup(self, config: dict[str, Any]) -> None:
            self.config_ = config

        def step(self) -> dict[str, Any]:
            return {"val_accuracy": 1.0 - abs(self.config_["learning_rate"] - 0.01)}

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            self.config_ = new_config
            return True

        # Tune saves a class trainable when a trial ends; an in-memory dict costs nothing.
        def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
            return {}

        def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            pass

    return _NoopStep


VARIANTS: dict[str, Callable[[argparse.Namespace, Path], dict[str, Any]]] = {
    "tuning-service": ours,
    "ray-tune-direct": ray_tune_direct,
}


def run_variant(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One variant in this process, with this process's memory before and after."""
    before = resident_mib()
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        try:
            found = VARIANTS[name](args, Path(tmp))
        except Unsupported as exc:
            return {"variant": name, "skipped": str(exc)}
    found.update(
        variant=name,
        trials_per_s=found["trials"] / found["wall_s"] if found["wall_s"] > 0 else None,
        rss_before_mib=before,
        rss_after_mib=resident_mib(),
        peak_rss_mib=peak_rss_mib(),
    )
    return found


def run_isolated(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The variant in a child process: its peak memory is not mixed with another's."""
    target = out / f"variant-{name}.json"
    cmd = [sys.executable, "-m", "benchmarks.driver_scale", "--variant", name, "--variant-json", str(target)]
    cmd += ["--seed", str(args.seed), "--cpus-per-trial", str(args.cpus_per_trial)]
    if args.checkpoint_frequency:
        cmd += ["--checkpoint-frequency", str(args.checkpoint_frequency)]
    cmd += (
        ["--smoke"] if args.smoke else ["--trials", str(args.trials[0]), "--max-epochs", str(args.max_epochs)]
    )
    if args.profile:  # the driver's own profile: the parent only waits for the child
        cmd += ["--profile", "--out", str(out / f"profile-{name}-{args.trials[0]}")]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0 or not target.exists():
        return {"variant": name, "failed": f"exit code {proc.returncode}"}
    return json.loads(target.read_text(encoding="utf-8"))


def body(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    if args.variant:  # a child started by run_isolated
        found = run_variant(args.variant, args)
        write_json(args.variant_json or out / f"variant-{args.variant}.json", found)
        return [found]
    names = list(VARIANTS) if not args.variants else [v.strip() for v in args.variants.split(",")]
    for name in names:
        if name not in VARIANTS:
            raise InputError(f"unknown variant {name!r}; choose from: {', '.join(VARIANTS)}")
    sizes = [20] if args.smoke else args.trials
    runs = []
    for size in sizes:
        sized = argparse.Namespace(**{**vars(args), "trials": [size]})
        for name in names:
            run = run_variant(name, sized) if args.in_process else run_isolated(name, sized, out)
            runs.append({**run, "size": size})
    epochs = _sizes(args)[1]
    rows = []
    for run in runs:
        if "wall_s" not in run:
            rows.append(
                [
                    run["variant"],
                    run["size"],
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    run.get("skipped") or run.get("failed"),
                ]
            )
            continue
        met = run["wall_s"] <= TARGET_S * run["trials"] / 1000
        tenths = run.get("rate_by_tenth") or []
        rows.append(
            [
                run["variant"],
                run["trials"],
                run["steps"],
                fmt(run["wall_s"], 1),
                fmt(run["trials_per_s"], 1),
                fmt(tenths[-1] / tenths[0], 2) if tenths and tenths[0] else "-",
                fmt(run["peak_rss_mib"], 0),
                ("met" if met else "NOT met") if run["variant"] == "tuning-service" else "reference",
            ]
        )
    lines = [
        f"## driver scale{' (smoke)' if args.smoke else ''}: no-op trials, random + ASHA "
        f"(max_t {epochs}), {args.cpus_per_trial:g} CPU per trial",
        "",
        markdown_table(
            [
                "variant",
                "trials",
                "steps",
                "wall s",
                "trials/s",
                "last tenth / first tenth rate",
                "driver peak RSS MiB",
                f"<= {TARGET_S:.0f} s / 1000",
            ],
            rows,
        ),
    ]
    ours = [r for r in runs if r["variant"] == "tuning-service" and r.get("trials_per_s")]
    if len(ours) > 1:
        small, large = ours[0], ours[-1]
        ratio = large["trials_per_s"] / small["trials_per_s"]
        verdict = "met" if ratio >= TARGET_FLAT else "NOT met"
        lines += [
            "",
            f"- target: {large['trials']} trials at >= {TARGET_FLAT:.0%} of the {small['trials']}-trial rate: "
            f"{ratio:.2f} ({verdict})",
        ]
    publish(
        out / "driver_scale",
        "driver_scale",
        args,
        "\n".join(lines),
        {"sizes": sizes, "max_epochs": epochs, "target_s_per_1000": TARGET_S, "runs": runs},
    )
    return runs


def build_parser() -> argparse.ArgumentParser:
    ap = cli.parser("driver_scale", (__doc__ or "").splitlines()[0])
    cli.add_trial_counts(ap, [1000, 10000], ": the 10,000-trial sweep takes minutes")
    ap.add_argument(
        "--max-epochs", type=int, default=9, help="ASHA's max_t: steps of a trial that is never stopped"
    )
    ap.add_argument("--cpus-per-trial", type=float, default=1.0)
    ap.add_argument(
        "--checkpoint-frequency", type=int, help="the sweep's checkpoint_frequency (default: the engine's)"
    )
    ap.add_argument("--variants", help=f"comma-separated subset of: {', '.join(VARIANTS)}")
    ap.add_argument("--in-process", action="store_true", help="no child processes (memory figures then mix)")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--variant-json", type=Path, help=argparse.SUPPRESS)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(build_parser(), body, argv, "driver_scale")


if __name__ == "__main__":
    sys.exit(main())
