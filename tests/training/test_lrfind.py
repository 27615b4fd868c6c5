"""The learning-rate range test: exponential rates, the suggestion rule, the PNG and the command."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from tuning_service.cli import main
from tuning_service.core.space import Choice, Fixed, Float, Int, Space
from tuning_service.data.catalog import load_job
from tuning_service.training.lrfind import find_lr, representative_config, suggest


def test_suggestion_is_a_tenth_of_the_rate_where_the_loss_bottoms_out():
    rates = list(np.geomspace(1e-5, 1.0, 60))
    # Flat, then falling to a minimum at index 40, then shooting up.
    losses = [2.0 - 1.5 * max(0, min(i, 40) - 20) / 20 + (0 if i <= 40 else (i - 40) ** 2) for i in range(60)]
    suggested, at_min, smoothed = suggest(rates, losses)
    assert len(smoothed) == 60
    assert rates[38] <= at_min <= rates[42]
    assert suggested == pytest.approx(at_min / 10)


def test_a_loss_that_is_never_finite_is_an_input_error():
    from tuning_service.core.errors import InputError

    with pytest.raises(InputError, match="lower --min-lr"):
        suggest([1e-3, 1e-2], [math.nan, math.inf])


def test_representative_config_respects_steps_logs_and_conditions():
    space = Space(
        {
            "opt": Choice(("adam", "sgd")),
            "momentum": Float(0.0, 0.9, when={"opt": ("sgd",)}),
            "units": Int(32, 512, step=32),
            "lr": Float(1e-4, 1e-2, log=True),
            "epochs": Fixed(3),
        }
    )
    config = representative_config(space)
    assert config == {"opt": "adam", "units": 288, "lr": pytest.approx(1e-3), "epochs": 3}


def test_find_lr_grows_the_rate_exponentially_over_one_epoch(caplog):
    caplog.set_level(
        logging.WARNING, logger="tuning_service.training.lrfind"
    )  # an earlier `-q` may have raised it
    job = load_job("digits")
    data = job.load_data(limit=320)
    result = find_lr(job, data, min_lr=1e-5, max_lr=1.0, batch_size=32, overrides={"units": 32})
    assert "one epoch is only 10 batches of 32 rows" in caplog.text
    assert 1 < len(result.rates) <= 10 and len(result.losses) == len(result.rates)
    ratios = np.array(result.rates[1:]) / np.array(result.rates[:-1])
    np.testing.assert_allclose(ratios, (1.0 / 1e-5) ** (1 / 9), rtol=1e-4)
    assert result.rates[0] == pytest.approx(1e-5)
    assert 1e-6 <= result.suggested <= 0.1 and result.config["units"] == 32


def test_lr_find_command_prints_the_rate_and_writes_the_png(tmp_path, capsys):
    out = tmp_path / "plots" / "digits.png"
    code = main(["lr-find", "digits", "--data-limit", "256", "--output", str(out), "--format", "json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["plot"] == str(out) and record["suggested_learning_rate"] > 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
