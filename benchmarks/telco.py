"""Telco churn, the seed's space and budget: this service vs Keras Tuner, two Optuna setups, GridSearchCV.

python -m benchmarks.telco [--smoke] [--out DIR] [--tools ours-optuna,keras-tuner,...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks import cli, compare


def build_parser() -> argparse.ArgumentParser:
    return compare.add_options(cli.parser("telco", (__doc__ or "").splitlines()[0]))


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(
        build_parser(), lambda a, out: compare.body("telco_churn", a, out, scenario="telco"), argv, "telco"
    )


if __name__ == "__main__":
    sys.exit(main())
