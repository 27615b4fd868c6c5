"""The Telco comparison, smaller: Pima diabetes or scikit-learn's digits, every tool side by side.

python -m benchmarks.small --dataset pima_diabetes|digits [--smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks import cli, compare

DATASETS = ("pima_diabetes", "digits")


def build_parser() -> argparse.ArgumentParser:
    ap = compare.add_options(cli.parser("small", (__doc__ or "").splitlines()[0]))
    ap.add_argument("--dataset", required=True, choices=DATASETS)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(
        build_parser(),
        lambda a, out: compare.body(a.dataset, a, out, scenario="small"),
        argv,
        lambda a: a.dataset,
    )


if __name__ == "__main__":
    sys.exit(main())
