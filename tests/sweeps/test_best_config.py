"""best_config.json: the record downstream training reads, the same in the file and on stdout."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from test_report import _made_up, _trial

from tuning_service.core import timestamps
from tuning_service.core.results import BEST_CONFIG_JSON, best_config_record, load_result, write_outputs


class _Clock:
    """A clock a second further on at every reading: the file and the printout straddle one."""

    def __init__(self) -> None:
        self.at = datetime(2026, 12, 5, 12, 7, 15, 999_000, tzinfo=UTC)

    def now(self, tz=None):
        self.at += timedelta(seconds=1)
        return self.at


def test_the_record_a_sweep_prints_is_the_one_its_file_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(timestamps, "datetime", _Clock())  # every clock reading of the service
    ended = "2026-12-05T12:07:15+00:00"
    result = replace(_made_up(tmp_path, [_trial(0, "completed", [0.5, 0.7, 0.9], 0.0)]), ended=ended)
    written = write_outputs(result)
    printed = best_config_record(result)  # what `run --format json` prints, a moment later
    on_disk = json.loads((tmp_path / BEST_CONFIG_JSON).read_text())
    assert written == printed == on_disk
    assert on_disk["created"] == ended  # when the sweep ended, not when the record was read
    # The sweep read back from its folder (`report`, `export`) carries the same end.
    assert best_config_record(load_result(tmp_path)) == on_disk
