"""The overhead scenario's CPU figures: what the driver and the machine used within a window."""

from __future__ import annotations

import time

import pytest

from benchmarks.cpuwindow import CpuWindow, machine_busy_s
from benchmarks.overhead import driver_budget_s


def test_a_window_between_samples_takes_its_share_of_each_interval() -> None:
    window = CpuWindow()
    window.samples = [(100.0, 1.0, 50.0), (101.0, 1.5, 51.8), (102.0, 1.6, 53.8)]
    process, machine = window.used(100.5, 101.5)
    assert process == pytest.approx(0.25 + 0.05)
    assert machine == pytest.approx(0.9 + 1.0)
    # Outside the samples, the nearest one holds.
    assert window.used(90.0, 110.0) == pytest.approx((0.6, 3.8))


def test_the_machine_figure_is_left_out_where_a_sample_lacks_it() -> None:
    window = CpuWindow()
    window.samples = [(100.0, 1.0, None), (101.0, 1.5, None)]
    assert window.used(100.0, 101.0) == (pytest.approx(0.5), None)


def test_a_sampled_block_sees_this_process_spin() -> None:
    with CpuWindow() as window:
        start = time.time()
        while time.process_time() < window.samples[0][1] + 0.3:
            pass
        end = time.time()
    process, machine = window.used(start, end)
    assert process == pytest.approx(0.3, abs=0.1)
    if machine_busy_s() is not None:
        assert machine is not None and machine >= 0.8 * process


def test_the_driver_budget_is_what_the_cores_leave_beside_training() -> None:
    # 2 slots at 0.85 train on 1.7 of 2 cores: 0.3 core for the driver per 1.7 core of training.
    assert driver_budget_s(2, 2, 0.85, 0.050) == pytest.approx(0.3 * 0.050 / 1.7)
    assert driver_budget_s(2, 2, 1.0, 0.050) == 0.0
    assert driver_budget_s(1, 2, 0.85, 0.050) == 0.0  # more slots than cores: nothing is left
