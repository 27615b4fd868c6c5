"""The report's lineage section, from a PBT sweep's lineage.json (made-up exploits, no Ray)."""

from __future__ import annotations

import json

from tuning_service.core.lineage import LINEAGE_JSON, changed
from tuning_service.sweeps.report import lineage_section, render_html

EXPLOITS = [
    {
        "number": 1,
        "trial_id": "t1",
        "epoch": 4,
        "value": 0.61,
        "donor_id": "t0",
        "donor_epoch": 4,
        "donor_value": 0.93,
        "changes": {
            "learning_rate": {"old": 0.0001, "donor": 0.01, "new": 0.012},
            "batch_size": {"old": 32, "donor": 64, "new": 64},
            "dropout": {"old": 0.2, "donor": 0.2, "new": 0.2},
        },
    },
    {
        "number": 2,
        "trial_id": "t0",
        "epoch": 8,
        "value": 0.9,
        "donor_id": "t1",
        "donor_epoch": 8,
        "donor_value": 0.95,
        "changes": {},
    },
]


def test_changes_name_what_moved_only():
    assert changed(EXPLOITS[0]) == "learning_rate 0.0001 -> 0.012, batch_size 32 -> 64"
    assert changed(EXPLOITS[1]) == "nothing"


def test_a_pbt_sweeps_report_shows_its_lineage(tmp_path):
    from tests.sweeps.test_report import _made_up, _trial

    (tmp_path / LINEAGE_JSON).write_text(json.dumps(EXPLOITS))
    result = _made_up(
        tmp_path, [_trial(0, "completed", [0.5, 0.9], 0.0), _trial(1, "completed", [0.4, 0.9], 0.0)]
    )
    page = render_html(result, None, {})
    section = page[page.index("<h2>lineage</h2>") :]
    assert "2 times a trial took over" in section and 'id="fig-lineage"' in section
    assert "<th>val_accuracy</th>" not in section and "<th>its val_accuracy</th>" in section
    assert '<td class="">learning_rate 0.0001 -&gt; 0.012, batch_size 32 -&gt; 64</td>' in section
    assert section.count("<tr>") == 3  # the header and one row per exploit


def test_other_sweeps_have_no_lineage_section(tmp_path):
    assert lineage_section(tmp_path, "val_accuracy") == ""
    assert lineage_section(None, "val_accuracy") == ""
