"""Summarise a py-spy raw profile (``py-spy record --format raw --subprocesses``) per process.

    py-spy record --subprocesses --format raw -o overhead.txt -- python -m benchmarks.overhead
    python -m benchmarks.stacks overhead.txt [--top 15] [--match reset_config,save_checkpoint]

Prints, for each kind of process (the driver, each Ray actor class, Ray's own
workers), its samples and the functions holding the most of them: by themselves
(self) and with everything they call (inclusive). That is the profile RESULTS.md
quotes where a target is missed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

_PROCESS = re.compile(r'^process \d+:"?(?P<cmd>.*?)"?$')


def process_kind(root: str) -> str:
    """Group processes by role: Ray workers, Ray's own daemons, the benchmark driver, or the command."""
    match = _PROCESS.match(root)
    cmd = match.group("cmd") if match else root
    if cmd.startswith("ray::") or "default_worker.py" in cmd:
        return "Ray worker (trials)"
    if "site-packages/ray/" in cmd:
        return "Ray daemons (" + cmd.split("site-packages/ray/", 1)[1].split()[0] + ")"
    if "benchmarks." in cmd:
        return "driver (" + next(p for p in cmd.split() if p.startswith("benchmarks.")) + ")"
    return cmd.split()[0].rsplit("/", 1)[-1] if cmd else "?"


def short(frame: str) -> str:
    """``fit (keras/src/.../trainer.py:314)`` -> ``fit (trainer.py:314)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if where else name


def summarise(lines: Sequence[str], *, top: int = 15, match: Sequence[str] = ()) -> str:
    samples: Counter[str] = Counter()
    own: dict[str, Counter[str]] = defaultdict(Counter)
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        # With --subprocesses py-spy nests a child's stack under its parents' "process" frames.
        processes = [f for f in frames if _PROCESS.match(f)]
        kind, n = process_kind(processes[-1] if processes else frames[0]), int(count)
        samples[kind] += n
        calls = [short(f) for f in frames if not _PROCESS.match(f)] or ["(idle)"]
        own[kind][calls[-1]] += n
        for frame in set(calls):
            inclusive[kind][frame] += n
    out = []
    for kind, total in samples.most_common():
        out.append(f"### {kind}: {total} samples")
        out.append("")
        out.append("| self % | function |")
        out.append("|---|---|")
        out += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in own[kind].most_common(top)]
        wanted = [(f, n) for f, n in inclusive[kind].most_common() if any(m in f for m in match)]
        if wanted:
            out += ["", "| inclusive % | function |", "|---|---|"]
            out += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in wanted[:top]]
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.stacks", description=(__doc__ or "").splitlines()[0]
    )
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--match", default="", help="comma-separated function names to show inclusive shares for")
    args = ap.parse_args(argv)
    lines = args.profile.read_text(encoding="utf-8", errors="replace").splitlines()
    match = [m for m in args.match.split(",") if m]
    sys.stdout.write(summarise(lines, top=args.top, match=match) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
