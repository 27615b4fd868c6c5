"""The report's SVG writer: what ``Figure.savefig(format="svg")`` writes, without its extra layout pass."""

from __future__ import annotations

import io
import re

import matplotlib as mpl
import pytest

from tuning_service.sweeps import plots
from tuning_service.sweeps.plots import TrialCurve
from tuning_service.sweeps.report import SVG_RC, _svg


def _curves(n: int) -> list[TrialCurve]:
    return [
        TrialCurve(
            trial_id=f"t{i}",
            status=("completed", "stopped early", "diverged")[i % 3],
            config={
                "learning_rate": 10 ** -(1 + i % 4),
                "units": 16 * (1 + i % 5),
                "act": ("relu", "tanh")[i % 2],
            },
            value=0.5 + i / (2 * n),
            epochs=list(range(1, 2 + i % 4)),
            metric=[0.4 + (i + e) / (3 * n) for e in range(1 + i % 4)],
            ends=[float(i + e) for e in range(1, 2 + i % 4)],
            durations=[1.0] * (1 + i % 4),
        )
        for i in range(n)
    ]


def _saved(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _undated(svg: str) -> str:
    return re.sub(r"<dc:date>.*?</dc:date>", "", svg)


@pytest.mark.parametrize("n", [12, plots.DENSE_TRIALS + 30])  # few trials; a rasterized collection
@pytest.mark.parametrize("figure", ["learning_curves", "parallel_coordinates", "best_so_far", "rung_stops"])
def test_the_report_writes_the_svg_savefig_writes(figure, n):
    data = _curves(n)

    def build():
        if figure == "rung_stops":
            return plots.rung_stops(data, 4)
        return getattr(plots, figure)(data, "val_accuracy", "max")

    with mpl.rc_context({"svg.hashsalt": "report"}):  # ids from content, not a random salt
        fig = build()
        fonttype = mpl.rcParams["svg.fonttype"]
        ours = _svg(fig)
        assert mpl.rcParams["svg.fonttype"] == fonttype  # the report's settings stayed in the report
        assert fig.dpi == build().dpi  # the figure is left as it was
        with mpl.rc_context(SVG_RC):
            assert _undated(ours) == _undated(_saved(build()))
    assert ours.startswith("<svg")
    if figure == "parallel_coordinates" and n > plots.DENSE_TRIALS:
        assert "<image" in ours  # the rasterized lines, drawn once


def test_the_report_writes_its_labels_as_text_a_reader_can_search():
    ours = _svg(plots.best_so_far(_curves(12), "val_accuracy", "max"))
    titles = re.findall(r"<text[^>]*>([^<]*)</text>", ours)
    assert "best so far vs wall time" in titles and "val_accuracy" in titles
    assert "sans-serif" in ours  # a font every browser has, where DejaVu Sans is not installed
