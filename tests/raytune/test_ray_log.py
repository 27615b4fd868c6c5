"""Ray's log file in the sweep folder: a full disk drops its lines with one warning, never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tuning_service.raytune.raysession import ray_logs_to


def test_lines_ray_log_cannot_hold_are_dropped_with_one_warning(capfd, caplog):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full, where every write fails with 'No space left on device'")
    caplog.set_level(logging.WARNING, logger="tuning_service.raytune.raysession")
    with ray_logs_to(Path("/dev/full")):
        for n in range(3):
            logging.getLogger("ray.tune").error("a line about trial %d", n)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Logging error" not in err, err
    assert caplog.text.count("could not write Ray's log to /dev/full") == 1
    assert "No space left on device" in caplog.text
