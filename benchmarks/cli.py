"""What every scenario command shares: its environment, common options, profiling and exit codes."""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.raytune.workerkeep import KEEP_ENV

DEFAULT_OUT = Path("tuning-results") / "benchmarks"  # ignored by git, beside the sweeps' results


def prepare_environment() -> None:
    """Environment that must be set before TensorFlow, Keras or Ray is imported."""
    from tuning_service.raytune.raysession import prepare_environment as prepare_ray

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Each sweep a scenario runs starts as a user's first sweep does, its own worker fork server
    # importing TensorFlow, and none is left after the command: a server kept from the tool run
    # before would start the next tool sooner than the first. `benchmarks.startup` times both.
    os.environ.setdefault(KEEP_ENV, "0")
    # The embedded Ray gets a token in the environment, not in the user's home.
    prepare_ray(None)


@contextmanager
def local_ray() -> Iterator[None]:
    """A new embedded Ray for the command (``address="local"``: never a cluster someone
    started on this machine), shut down after; the Ray this process runs already if any
    (the test session shares one)."""
    import ray

    owned = not ray.is_initialized()
    if owned:
        ray.init(
            address="local",
            num_cpus=os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        yield
    finally:
        if owned:
            ray.shutdown()


def parser(scenario: str, description: str) -> argparse.ArgumentParser:
    """A scenario's parser with the options every scenario takes."""
    ap = argparse.ArgumentParser(prog=f"python -m benchmarks.{scenario}", description=description)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, for CI (figures mean nothing)")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"directory for the JSON, table and plot (default {DEFAULT_OUT}/...)",
    )
    ap.add_argument("--seed", type=int, default=0, help="data split, searchers and weights (default 0)")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile this process; top functions to the out dir"
    )
    return ap


def add_trial_sizes(ap: argparse.ArgumentParser, *, trials: int, what: str, epochs: str) -> None:
    """--trials (``what``, ``trials`` by default) and --epochs (``epochs``, 3 by default)."""
    ap.add_argument("--trials", type=int, default=trials, help=f"{what} (default {trials})")
    ap.add_argument("--epochs", type=int, default=3, help=f"{epochs} (default 3)")


def trial_sizes(args: argparse.Namespace, smoke: tuple[int, int]) -> tuple[int, int]:
    """--trials and --epochs (``smoke``'s with --smoke); refused below 1."""
    trials, epochs = smoke if args.smoke else (args.trials, args.epochs)
    if trials < 1 or epochs < 1:
        raise InputError(f"--trials and --epochs must be >= 1, got {trials} and {epochs}")
    return trials, epochs


def trial_counts(text: str) -> list[int]:
    """An option's comma-separated trial counts (sweep sizes), each at least 1."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected trial counts like 1000,10000, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"trial counts must be >= 1, got {text!r}")
    return counts


def add_trial_counts(ap: argparse.ArgumentParser, default: list[int], note: str = "") -> None:
    """--trials: the sweep sizes to measure, comma-separated (``default``; ``note`` follows it in the help)."""
    shown = ",".join(str(n) for n in default)
    ap.add_argument(
        "--trials",
        type=trial_counts,
        default=default,
        help=f"sweep sizes, comma-separated (default {shown}{note})",
    )


def out_dir(args: argparse.Namespace, name: str) -> Path:
    path = args.out if args.out is not None else DEFAULT_OUT / (f"{name}-smoke" if args.smoke else name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(
    ap: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Path], Any],
    argv: Sequence[str] | None,
    name: str | Callable[[argparse.Namespace], str],
) -> int:
    """A scenario command: parse ``argv`` (default: the command line), keep it for the JSON's
    ``command``, and `run` ``body`` under ``name`` (or the name the parsed options give)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    args.argv = argv
    return run(body, args, name if isinstance(name, str) else name(args))


def run(body: Callable[[argparse.Namespace, Path], Any], args: argparse.Namespace, name: str) -> int:
    """Run a scenario's ``body(args, out)`` (profiled with --profile); bad input exits 2, one line on stderr."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("benchmarks").setLevel(logging.INFO)  # progress lines; libraries stay quiet
    prepare_environment()
    out = out_dir(args, name)
    try:
        if not args.profile:
            body(args, out)
            return 0
        profile = cProfile.Profile()
        try:
            profile.runcall(body, args, out)
        finally:
            write_profile(profile, out / f"profile-{name}")
        return 0
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def write_profile(profile: cProfile.Profile, stem: Path, top: int = 40) -> Path:
    """The raw profile (for snakeviz and friends) and its top functions by cumulative time."""
    profile.dump_stats(stem.with_suffix(".prof"))
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(top)
    path = stem.with_suffix(".txt")
    path.write_text(text.getvalue(), encoding="utf-8")
    return path
