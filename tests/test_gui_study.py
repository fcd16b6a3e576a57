"""Issue 17, the study view: load an ``xbar study`` result and show its table, CIs and per-run
plots. The file is a real ``xbar study`` run shipped with the docs (paper preset, ERM and
BayesMulti, 2 bench × 2 training seeds); the expected texts are computed from its runs here,
not copied from the panel."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from gui.panels.study import SUMMARY_COLUMNS, StudyFileError, load_study, pct
from gui.screenshots import EXAMPLE_STUDY


def _ci(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float(v.mean()), math.nan
    return float(v.mean()), float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))


def test_the_shipped_example_is_a_real_study_run() -> None:
    data = load_study(EXAMPLE_STUDY)
    assert data["spec"]["profile"] == "paper"
    spec = data["spec"]
    grid = [spec[k] for k in ("methods", "configs", "bench_seeds", "train_seeds")]
    assert len(data["runs"]) == int(np.prod([len(g) for g in grid])) == 60  # 2 × 2 × 5 × 3
    for row in data["summary"]:
        runs = [
            r for r in data["runs"] if r["method"] == row["method"] and r["loop"] == row["loop"]
        ]
        mean, half = _ci([r["hardware"] for r in runs])
        assert row["hardware"] == pytest.approx(mean, abs=1e-12)
        assert row["hardware_ci95"] == pytest.approx(half, abs=1e-12)


def test_study_view_shows_the_table_with_cis(offline_window, tmp_path: Path) -> None:
    panel = offline_window.study_panel
    assert offline_window.tabs.indexOf(panel) >= 0
    assert panel.load(EXAMPLE_STUDY)
    data = json.loads(EXAMPLE_STUDY.read_text())
    texts = panel.summary_texts()
    assert len(texts) == len(data["summary"])
    assert panel.summary_table.columnCount() == len(SUMMARY_COLUMNS)
    for row, shown in zip(data["summary"], texts, strict=True):
        runs = [
            r for r in data["runs"] if r["method"] == row["method"] and r["loop"] == row["loop"]
        ]
        hw = _ci([r["hardware"] for r in runs])
        loss = _ci([r["loss"] for r in runs])
        assert shown[0] == row["method"]
        assert shown[1] == ("+".join(row["loop"]) or "none")
        assert shown[2] == str(len(runs))
        assert shown[4] == f"{100 * hw[0]:.1f} ± {100 * hw[1]:.1f}"
        assert shown[5] == f"{100 * loss[0]:.1f} ± {100 * loss[1]:.1f}"
        paper = row["paper_loss"]  # the paper's row stands beside the loop-off runs only
        assert shown[6] == ("" if paper is None else f"{100 * paper:.0f}")
        assert (paper is None) == bool(row["loop"])
    assert str(EXAMPLE_STUDY) in panel.source.text()
    assert "5 bench × 3 training seeds" in panel.source.text()
    # per-run plot: one point per run, one error bar per summary row
    items = panel.runs_plot.getPlotItem().items
    scatter = [i for i in items if type(i).__name__ == "ScatterPlotItem"]
    bars = [i for i in items if type(i).__name__ == "ErrorBarItem"]
    assert sum(len(s.data) for s in scatter) == len(data["runs"])
    assert len(bars) == len(data["summary"])
    ys = sorted(float(y) for s in scatter for y in s.data["y"])
    assert ys == pytest.approx(sorted(100 * r["hardware"] for r in data["runs"]))
    # output-error histograms: one curve per method (runs without the loop)
    curves = panel.errors_plot.getPlotItem().listDataItems()
    assert len(curves) == len(data["spec"]["methods"])


def test_a_single_run_shows_no_ci(offline_window, tmp_path: Path) -> None:
    data = json.loads(EXAMPLE_STUDY.read_text())
    first = data["runs"][0]
    data["runs"] = [first]
    data["summary"] = [
        {
            "method": first["method"],
            "loop": first["loop"],
            "runs": 1,
            "software": first["software"],
            "software_ci95": math.nan,
            "hardware": first["hardware"],
            "hardware_ci95": math.nan,
            "loss": first["loss"],
            "loss_ci95": math.nan,
            "paper_loss": None,
        }
    ]
    path = tmp_path / "study.json"
    path.write_text(json.dumps(data))  # NaN as json writes it, as xbar study does
    assert offline_window.study_panel.load(tmp_path)  # the folder holding study.json
    row = offline_window.study_panel.summary_texts()[0]
    assert row[4] == f"{100 * first['hardware']:.1f}"
    assert row[6] == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON object is expected"),
        ('{"spec": {}, "runs": []}', "missing summary"),
        ('{"spec": {}, "runs": [], "summary": [{"method": "erm"}]}', "summary row 1 has no 'loop'"),
    ],
)
def test_a_file_that_is_not_a_study_is_refused_with_one_line(
    offline_window, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "study.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(StudyFileError, match=message):
        load_study(path)
    panel = offline_window.study_panel
    assert not panel.load(path)
    assert panel.study is None
    assert any("Cannot load the study" in ln and message in ln for ln in offline_window.log_lines())


def test_pct_formats_mean_and_ci() -> None:
    assert pct(0.4567, 0.0123) == "45.7 ± 1.2"
    assert pct(0.5, math.nan) == "50.0"
    assert pct(math.nan, 0.1) == "-"
    assert pct(None, None) == "-"
