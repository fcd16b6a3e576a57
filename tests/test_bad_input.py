"""Bad input through the real CLI: a clear one-line message, exit 2, no traceback, no bench.

The corpus is generated into a temporary folder (small files: truncated and wrong-format I-V
files, renamed columns, NaN/text/absurd numbers, broken bench TOMLs, broken model files
including an unsafe pickled payload, bad target maps, bad data files) and combined with bad
command-line numbers. Every case runs ``xbar.cli.main`` in-process and must

* exit with code 2 (argparse's SystemExit included);
* print ONE error line on stderr naming the file / key / option and the problem (``xbar
  calibrate`` also prints its "N of M device(s) failed" tally — its errors are one line each);
* never show a traceback;
* never open a bench: validation happens before :func:`lab.open_backend` builds
  anything (no twin is built, no instrument session opened).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from bench.faults import run_cli, write_bench

SIM = Path(__file__).resolve().parents[1] / "crossbar" / "benches" / "sim.toml"


class _Evil:
    """Unpickling this runs a shell command: what a malicious .pt would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write_xlsx(path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["voltage", "current_cycle1", "current_cycle2"])
    for k in range(20):
        ws.append([0.1 * k, 1e-6 * k, 1.1e-6 * k])
    wb.save(path)


def _bench_text(old: str, new: str) -> str:
    text = SIM.read_text()
    assert old in text
    return text.replace(old, new)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad_inputs")
    f = d.joinpath
    # --- I-V data files (xbar calibrate)
    _write_xlsx(f("good.xlsx"))
    f("truncated.xlsx").write_bytes(f("good.xlsx").read_bytes()[:300])
    f("text.xlsx").write_text("voltage,current_cycle1\n0,1\n")
    head = "voltage,current_cycle1,current_cycle2\n"
    rows = "".join(f"{0.1 * k},{1e-6 * k},{1.1e-6 * k}\n" for k in range(20))
    f("no_current.csv").write_text("voltage\n" + "".join(f"{0.1 * k}\n" for k in range(20)))
    f("renamed.csv").write_text("V,I1,I2\n" + rows)
    f("inf.csv").write_text(head + rows.replace(",4e-06,", ",inf,", 1))
    f("nan_everywhere.csv").write_text(head + "nan,nan,nan\n" * 5)
    f("textnum.csv").write_text(head + rows.replace("0.5,", "abc,", 1))
    f("empty.csv").write_text("")
    f("header_only.csv").write_text(head)
    f("absurd.csv").write_text(head + "".join(f"{1e300 * k},{1e300},{-1e300}\n" for k in range(20)))
    f("binary.csv").write_bytes(bytes(range(256)) * 4)
    with h5py.File(f("good.h5"), "w") as h:
        h["voltage"] = np.linspace(0, 1, 20)
    f("truncated.h5").write_bytes(f("good.h5").read_bytes()[:96])
    with h5py.File(f("wrong_layout.h5"), "w") as h:
        h["something"] = np.arange(5)
    # --- bench files
    f("typo.toml").write_text(_bench_text("max_voltage = 6.0", "max_voltag = 6.0"))
    f("section.toml").write_text(_bench_text("[limits]", "[limit]"))
    f("range.toml").write_text(_bench_text("max_voltage = 6.0", "max_voltage = 1000.0"))
    f("type.toml").write_text(_bench_text("rows = 10", 'rows = "ten"'))
    f("syntax.toml").write_text("[bench\nname = 'x'\n")
    f("negcomp.toml").write_text(_bench_text("max_compliance = 1e-3", "max_compliance = -1e-3"))
    f("readlimit.toml").write_text(
        _bench_text("max_read_voltage = 0.3", "max_read_voltage = 0.3\n").replace(
            "max_voltage = 6.0", "max_voltage = 0.2"
        )
    )
    f("faultkey.toml").write_text(
        SIM.read_text() + "\n[simulation.faults.keithley]\ntimeout_afterr = 3\n"
    )
    f("backend.toml").write_text(_bench_text('backend = "twins"', 'backend = "twin"'))
    f("nan.toml").write_text(_bench_text("max_voltage = 6.0", "max_voltage = nan"))
    f("real.toml").write_text(_bench_text('backend = "twins"', 'backend = "instruments"'))
    # --- simulated devices in bench files ([simulation.device], a profile JSON)
    f("devkey.toml").write_text(SIM.read_text() + "\n[simulation.device]\ndrif_nu = 0.1\n")
    f("devrange.toml").write_text(SIM.read_text() + "\n[simulation.device]\ndrift_nu = 5.0\n")
    f("devcross.toml").write_text(SIM.read_text() + "\n[simulation.device]\ng_on = 1e-9\n")
    f("devjson.toml").write_text(_bench_text('profile = "optimized"', 'profile = "dev.json"'))
    f("dev.json").write_text(json.dumps({"name": "mine", "g_noise": 2.0}))
    # --- models (xbar infer)
    code, _, err = run_cli(
        ["train", "--method", "erm", "--data", "moons", "--epochs", "5", "--out", str(f("m/erm"))]
    )
    assert code == 0, err
    meta = json.loads(f("m/erm.json").read_text())
    for name in ("shape", "pickle", "truncated", "nojson", "badjson", "keys"):
        f(name).mkdir()
        shutil.copy(f("m/erm.json"), f(name) / "erm.json")
        shutil.copy(f("m/erm.pt"), f(name) / "erm.pt")
    import torch

    torch.save({"layers.0.weight": torch.zeros(7, 3)}, f("shape/erm.pt"))
    with f("pickle/erm.pt").open("wb") as fh:
        pickle.dump(_Evil(f("PWNED")), fh)
    f("truncated/erm.pt").write_bytes(f("m/erm.pt").read_bytes()[:100])
    f("nojson/erm.json").unlink()
    f("badjson/erm.json").write_text(f("m/erm.json").read_text()[:-40])
    f("keys/erm.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "sizes"}))
    # --- target maps (xbar program)
    t = np.full((10, 10), np.nan)
    t[0, 0] = 5e-6
    np.savetxt(f("ok.csv"), t, delimiter=",")
    f("t_shape.csv").write_text("1e-6,2e-6,3e-6\n4e-6,5e-6,6e-6\n")
    neg = t.copy()
    neg[2, 3] = -1e-6
    np.savetxt(f("t_neg.csv"), neg, delimiter=",")
    f("t_text.csv").write_text(f("ok.csv").read_text().replace("nan", "ten", 1))
    absurd = t.copy()
    absurd[4, 4] = 1.0
    np.savetxt(f("t_absurd.csv"), absurd, delimiter=",")
    inf = t.copy()
    inf[1, 1] = np.inf
    np.savetxt(f("t_inf.csv"), inf, delimiter=",")
    np.savetxt(f("t_allnan.csv"), np.full((10, 10), np.nan), delimiter=",")
    f("t_ragged.csv").write_text("1e-6,2e-6\n1e-6\n")
    np.save(f("t_obj.npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(f("t_3d.npy"), np.full((2, 10, 10), 1e-6))
    f("t_trunc.npy").write_bytes(b"\x93NUMPY\x01\x00")
    shutil.copy(f("good.xlsx"), f("t_map.xlsx"))
    # --- data files
    f("notes.h5").write_text("these are my notes, not HDF5")
    with h5py.File(f("other.h5"), "w") as h:
        h["x"] = np.arange(3)
    f("existing.h5").write_bytes(b"")  # replaced by a real data file in the test
    # --- deployment profiles (xbar characterise --show)
    good = _deployment_profile()
    f("dp_good.json").write_text(json.dumps(good))
    bad = json.loads(json.dumps(good))
    del bad["read_noise"]["sigma_rel"]
    f("dp_missing.json").write_text(json.dumps(bad))
    bad = json.loads(json.dumps(good))
    bad["programming"]["sigma_rel"] = 2.5
    f("dp_range.json").write_text(json.dumps(bad))
    bad = json.loads(json.dumps(good))
    bad["window"]["colour"] = "red"
    f("dp_unknown.json").write_text(json.dumps(bad))
    f("dp_broken.json").write_text(json.dumps(good)[:-30])
    return d


def _deployment_profile() -> dict:
    """A valid deployment profile (2×2 array), built field by field."""
    from crossbar.deployment_profile import DeploymentProfile

    doc = {
        "bench": "sim",
        "shape": [2, 2],
        "cells": [[0, 0], [1, 1]],
        "created": "2026-12-04T00:00:00+00:00",
        "bench_time": 100.0,
        "protocol": {"n_reads": 20},
        "read_noise": {
            "v_read": 0.2,
            "biasing": "ground",
            "n_reads": 20,
            "sigma_rel": 0.01,
            "sigma_rel_per_cell": [0.01, 0.011],
            "g_per_cell": [1e-5, 2e-5],
            "slope": 1.0,
        },
        "programming": {
            "tol": 0.03,
            "targets": [1e-5, 2e-5],
            "sigma_rel": 0.02,
            "sigma_rel_by_target": [0.02, 0.02],
            "mean_pulses": 20.0,
            "converged_fraction": 1.0,
            "settle_times": [1.0, 10.0],
            "relaxation_rel": 0.0,
            "drift_nu_mean": 0.01,
            "drift_nu_std": 0.002,
            "dissolved_fraction": 0.0,
        },
        "pulse_response": {
            "amplitude_set": 3.4,
            "amplitude_reset": -2.6,
            "width": 1e-3,
            "n_pulses": 20,
            "levels": 12,
            "dynamic_range": 100.0,
            "g_min": 1e-7,
            "g_max": 1e-4,
            "nonlinearity_set": 2.0,
            "nonlinearity_reset": 3.0,
            "asymmetry": 1.0,
        },
        "window": {
            "g_min": [[1e-7, 1e-7], [1e-7, 1e-7]],
            "g_max": [[1e-4, 1e-4], [1e-4, 1e-4]],
            "stuck": [],
            "stuck_fraction": 0.0,
            "min_ratio": 2.0,
        },
    }
    DeploymentProfile.from_dict(doc)  # the corpus's good file is a real profile
    return doc


# (id, argv builder, fragments the one error line must contain)
Case = tuple[str, Callable[[Path], list[str]], tuple[str, ...]]


def _sweep(d: Path, *extra: str, bench: str = "sim") -> list[str]:
    return ["sweep", "--bench", bench, "--cell", "0,0", "--data", str(d / "s.h5"), *extra]


def _read(d: Path, *extra: str, bench: str = "sim") -> list[str]:
    return ["read-map", "--bench", bench, "--data", str(d / "r.h5"), *extra]


def _prog(d: Path, targets: str, *extra: str) -> list[str]:
    return ["program", "--targets", str(d / targets), "--data", str(d / "p.h5"), *extra]


def _infer(d: Path, model: str) -> list[str]:
    return ["infer", "--model", str(d / model / "erm"), "--out", str(d / "out")]


def _check(d: Path, *extra: str) -> list[str]:
    return ["check", *extra]


def _cal(name: str, *frags: str) -> Case:
    return (f"calibrate-{name}", lambda d: ["calibrate", str(d / name)], (name, *frags))


CASES: list[Case] = [
    # I-V data files
    _cal("truncated.xlsx", "Excel workbook"),
    _cal("text.xlsx", "Excel workbook"),
    _cal("no_current.csv", "current_cycleN"),
    _cal("renamed.csv", "'voltage' column"),
    _cal("inf.csv", "current inf A", "not plausible"),
    _cal("nan_everywhere.csv", "no data rows"),
    _cal("textnum.csv"),
    _cal("empty.csv"),
    _cal("header_only.csv"),
    _cal("absurd.csv", "voltage 1e+300 V", "not plausible"),
    _cal("binary.csv"),
    _cal("truncated.h5", "HDF5"),
    _cal("wrong_layout.h5"),
    # bench files
    ("bench-typo", lambda d: _sweep(d, bench=str(d / "typo.toml")), ("[limits]", "max_voltag")),
    ("bench-section", lambda d: _read(d, bench=str(d / "section.toml")), ("[limit]",)),
    ("bench-range", lambda d: _read(d, bench=str(d / "range.toml")), ("max_voltage", "505")),
    ("bench-type", lambda d: _read(d, bench=str(d / "type.toml")), ("[crossbar] rows",)),
    ("bench-syntax", lambda d: _read(d, bench=str(d / "syntax.toml")), ("not valid TOML",)),
    ("bench-missing", lambda d: _read(d, bench=str(d / "nope.toml")), ("no such bench file",)),
    ("bench-negcomp", lambda d: _read(d, bench=str(d / "negcomp.toml")), ("max_compliance",)),
    ("bench-readlimit", lambda d: _read(d, bench=str(d / "readlimit.toml")), ("max_read_voltage",)),
    ("bench-faultkey", lambda d: _read(d, bench=str(d / "faultkey.toml")), ("timeout_afterr",)),
    ("bench-backend", lambda d: _read(d, bench=str(d / "backend.toml")), ('"twin"',)),
    ("bench-nan", lambda d: _read(d, bench=str(d / "nan.toml")), ("max_voltage = nan",)),
    ("bench-profile", lambda d: _read(d, "--profile", "great"), ('profile = "great"',)),
    # xbar check (bench self-test)
    ("check-missing", lambda d: _check(d, "--bench", str(d / "nope.toml")), ("no such bench",)),
    ("check-syntax", lambda d: _check(d, "--bench", str(d / "syntax.toml")), ("not valid TOML",)),
    ("check-typo", lambda d: _check(d, "--bench", str(d / "typo.toml")), ("max_voltag",)),
    ("check-fault-name", lambda d: _check(d, "--fault", "lid-ajar"),
     ("fault 'lid-ajar'", "interlock-open")),
    ("check-fault-real", lambda d: _check(d, "--bench", str(d / "real.toml"), "--fault", "no-ad2"),
     ("fault 'no-ad2'", "simulated bench")),
    ("check-cell", lambda d: _check(d, "--cell", "12,0"), ("--cell 12,0", "10x10")),
    ("check-voltage", lambda d: _check(d, "--read-voltage", "0.2"), ("read voltage 0.2 V", "0.1 V")),
    ("check-voltage-text", lambda d: _check(d, "--read-voltage", "low"), ("--read-voltage 'low'",)),
    ("device-key", lambda d: _read(d, bench=str(d / "devkey.toml")),
     ("[simulation.device]", "'drif_nu'", "drift_nu")),
    ("device-range", lambda d: _read(d, bench=str(d / "devrange.toml")),
     ("[simulation.device] drift_nu = 5.0", "[0, 1]")),
    ("device-cross", lambda d: _read(d, bench=str(d / "devcross.toml")),
     ("[simulation.device] g_on = 1e-09", "g_off")),
    ("device-json", lambda d: _read(d, bench=str(d / "devjson.toml")),
     ('profile = "dev.json"', "g_noise = 2.0", "[0, 1]")),
    # model files
    ("model-shape", lambda d: _infer(d, "shape"), ("erm.pt", "does not match")),
    ("model-pickle", lambda d: _infer(d, "pickle"), ("erm.pt", "weights-only")),
    ("model-truncated", lambda d: _infer(d, "truncated"), ("erm.pt", "weights-only")),
    ("model-nojson", lambda d: _infer(d, "nojson"), ("erm.json", "missing")),
    ("model-badjson", lambda d: _infer(d, "badjson"), ("erm.json", "not valid JSON")),
    ("model-keys", lambda d: _infer(d, "keys"), ("erm.json", "missing keys", "sizes")),
    ("model-absent", lambda d: _infer(d, "nowhere"), ("erm.json",)),
    # target maps
    ("targets-shape", lambda d: _prog(d, "t_shape.csv"), ("t_shape.csv", "2x3", "10x10")),
    ("targets-negative", lambda d: _prog(d, "t_neg.csv"), ("t_neg.csv", "(2, 3)", "> 0 S")),
    ("targets-text", lambda d: _prog(d, "t_text.csv"), ("t_text.csv", "line 1", "'ten'")),
    ("targets-absurd", lambda d: _prog(d, "t_absurd.csv"), ("t_absurd.csv", "(4, 4)", "1 S")),
    ("targets-inf", lambda d: _prog(d, "t_inf.csv"), ("t_inf.csv", "(1, 1)", "infinite")),
    ("targets-allnan", lambda d: _prog(d, "t_allnan.csv"), ("t_allnan.csv", "nothing")),
    ("targets-ragged", lambda d: _prog(d, "t_ragged.csv"), ("t_ragged.csv", "columns")),
    ("targets-object", lambda d: _prog(d, "t_obj.npy"), ("t_obj.npy", "allow_pickle")),
    ("targets-3d", lambda d: _prog(d, "t_3d.npy"), ("t_3d.npy", "2x10x10")),
    ("targets-trunc", lambda d: _prog(d, "t_trunc.npy"), ("t_trunc.npy",)),
    ("targets-xlsx", lambda d: _prog(d, "t_map.xlsx"), ("t_map.xlsx", ".csv or .npy")),
    ("targets-missing", lambda d: _prog(d, "nope.csv"), ("nope.csv", "no such file")),
    # command-line numbers
    ("cli-cell-outside", lambda d: _sweep(d, "--cell", "11,3"), ("--cell 11,3", "10x10")),
    ("cli-cell-text", lambda d: _sweep(d, "--cell", "a,b"), ("--cell", "R,C")),
    ("cli-step-negative", lambda d: _sweep(d, "--step", "-0.1"), ("--step -0.1", "> 0")),
    ("cli-step-nan", lambda d: _sweep(d, "--step", "nan"), ("--step nan", "finite")),
    ("cli-step-tiny", lambda d: _sweep(d, "--step", "1e-9"), ("--step", "points per cycle")),
    ("cli-step-uneven", lambda d: _sweep(d, "--step", "0.07"), ("0.07", "whole number")),
    ("cli-cycles-zero", lambda d: _sweep(d, "--cycles", "0"), ("--cycles 0",)),
    ("cli-cycles-text", lambda d: _sweep(d, "--cycles", "two"), ("--cycles 'two'",)),
    ("cli-vmax-beyond", lambda d: _sweep(d, "--vmax", "100"), ("--vmax 100", "6 V")),
    ("cli-vmin-positive", lambda d: _sweep(d, "--vmin", "1"), ("--vmin 1", "<= 0")),
    ("cli-compliance", lambda d: _sweep(d, "--compliance", "1"), ("--compliance 1", "0.001")),
    ("cli-vmax-nan", lambda d: _sweep(d, "--vmax", "nan"), ("--vmax nan", "finite")),
    ("cli-nplc", lambda d: _sweep(d, "--nplc", "60"), ("--nplc 60",)),
    (
        "cli-biasing-negative",
        lambda d: _sweep(d, "--biasing", "cols-2v/3"),
        ("--biasing cols-2v/3", "V >= 0 only"),
    ),
    ("cli-vread-beyond", lambda d: _read(d, "--v-read", "0.5"), ("--v-read 0.5", "0.3 V")),
    ("cli-vread-zero", lambda d: _read(d, "--v-read", "0"), ("--v-read 0", "non-zero")),
    ("cli-biasing", lambda d: _read(d, "--biasing", "v/4"), ("'v/4'", "v/3")),
    ("cli-seed", lambda d: _read(d, "--seed", "-1"), ("--seed -1",)),
    ("cli-unknown-option", lambda d: _read(d, "--frobnicate"), ("--frobnicate",)),
    ("cli-tol", lambda d: _prog(d, "ok.csv", "--tol", "0"), ("--tol 0",)),
    ("cli-max-pulses", lambda d: _prog(d, "ok.csv", "--max-pulses", "0"), ("--max-pulses 0",)),
    ("cli-vmax-program", lambda d: _prog(d, "ok.csv", "--v-max", "100"), ("--v-max 100",)),
    ("cli-test-points", lambda d: [*_infer(d, "m"), "--test-points", "0"], ("--test-points",)),
    # data files
    ("data-not-hdf5", lambda d: _read(d, "--data", str(d / "notes.h5")), ("notes.h5",)),
    ("data-foreign-hdf5", lambda d: _read(d, "--data", str(d / "other.h5")), ("other.h5",)),
    ("data-directory", lambda d: _read(d, "--data", str(d)), ("is a directory",)),
    ("data-exists", lambda d: [*_prog(d, "ok.csv")[:3], "--data", str(d / "existing.h5")],
     ("existing.h5", "--resume")),
    ("data-resume-foreign", lambda d: [*_prog(d, "ok.csv")[:3], "--data", str(d / "notes.h5"),
                                       "--resume"], ("notes.h5",)),
    # deployment profiles
    ("profile-missing", lambda d: ["characterise", "--show", str(d / "dp_missing.json")],
     ("dp_missing.json", "read_noise.sigma_rel", "missing")),
    ("profile-range", lambda d: ["characterise", "--show", str(d / "dp_range.json")],
     ("dp_range.json", "programming.sigma_rel = 2.5", "less than or equal to 1")),
    ("profile-unknown", lambda d: ["characterise", "--show", str(d / "dp_unknown.json")],
     ("dp_unknown.json", "window.colour", "unknown field")),
    ("profile-broken", lambda d: ["characterise", "--show", str(d / "dp_broken.json")],
     ("dp_broken.json", "not a JSON")),
    ("profile-cells", lambda d: ["characterise", "--cells", "3,12"], ("--cells 3,12", "10x10")),
    # training against a deployment profile, methods, the robustness study
    ("train-profile-array", lambda d: ["train", "--method", "hwa", "--deployment-profile",
                                       str(d / "dp_good.json"), "--out", str(d / "m/t")],
     ("dp_good.json", "2x2 array", "2-5-2")),
    ("train-profile-broken", lambda d: ["train", "--method", "bayesmulti", "--deployment-profile",
                                        str(d / "dp_broken.json"), "--out", str(d / "m/t")],
     ("dp_broken.json", "not a JSON")),
    ("train-method-unknown", lambda d: ["train", "--method", "sgd", "--out", str(d / "m/t")],
     ("--method", "'sgd'")),
    ("train-hwa-no-target", lambda d: ["train", "--method", "hwa", "--out", str(d / "m/t")],
     ("--method hwa needs a target",)),
    ("robustness-devices", lambda d: ["robustness", "--devices", str(d / "nope.xlsx"), "--out",
                                      str(d / "rob")], ("--devices", "nope.xlsx")),
    ("robustness-tune-mode", lambda d: ["robustness", "--tune", "single", "--out", str(d / "rob")],
     ("--tune", "'single'")),
    # the study grid (issue 15): an unknown method or step, a profile of another array
    ("study-method", lambda d: ["study", "--methods", "erm,sgd", "--out", str(d / "st")],
     ("--methods", "'sgd'", "bayesmulti")),
    ("study-step", lambda d: ["study", "--loop", "none", "fault-aware+magic", "--out",
                              str(d / "st")], ("--loop", "'magic'", "chip-in-loop")),
    ("study-profile-array", lambda d: ["study", "--characterise", str(d / "dp_good.json"),
                                       "--out", str(d / "st")], ("dp_good.json", "2x2", "10x10")),
]  # fmt: skip


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.fixture
def benches_built(monkeypatch) -> list:
    """Every attempt to build a bench (twins or instruments) is recorded."""
    import lab as cbench

    built: list = []
    orig_twins, orig_inst = cbench.build_sim_bench, cbench._open_instruments

    def twins(*a, **k):
        built.append("twins")
        return orig_twins(*a, **k)

    def inst(*a, **k):
        built.append("instruments")
        return orig_inst(*a, **k)

    monkeypatch.setattr(cbench, "build_sim_bench", twins)
    monkeypatch.setattr(cbench, "_open_instruments", inst)
    return built


@pytest.mark.parametrize(("argv", "fragments"), [pytest.param(c[1], c[2], id=c[0]) for c in CASES])
def test_bad_input_is_one_line_exit_2(corpus: Path, benches_built: list, argv, fragments) -> None:
    args = argv(corpus)
    if "existing.h5" in " ".join(args):  # a real data file of an earlier run
        _make_data_file(corpus / "existing.h5")
    code, out, err = run_cli(args)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    if args[0] == "calibrate":
        errors = [ln for ln in lines if ": error: " in ln]
        others = [ln for ln in lines if ": error: " not in ln]
        assert len(errors) == 1, err
        assert all(ln.endswith("device(s) failed") for ln in others), err
        line = errors[0]
    else:
        assert len(lines) == 1, err
        line = lines[0]
    assert line.startswith(f"xbar {args[0]}: error: ") or line.startswith("xbar: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert benches_built == []  # refused before any bench was built
    assert not (corpus / "PWNED").exists()  # the pickled payload never ran


def _make_data_file(path: Path) -> None:
    from crossbar.datastore import DataStore

    path.unlink(missing_ok=True)
    with DataStore(path) as store:
        store.record("read", time=0.0, row=0, col=0, conductance=1e-6)


def test_good_inputs_of_the_corpus_pass(corpus: Path, tmp_path: Path) -> None:
    """The corpus' well-formed twins work: the failures above are about the damage."""
    bench = write_bench(tmp_path / "b.toml")
    code, out, err = run_cli(
        ["program", "--bench", str(bench), "--targets", str(corpus / "ok.csv"), "--data",
         str(tmp_path / "p.h5"), "--json"]
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["converged_total"] == 1
    code, out, err = run_cli(["read-map", "--csv", str(tmp_path / "m.csv"), "--data",
                              str(tmp_path / "m.h5"), "--json"])  # fmt: skip
    assert code == 0, err
    g = np.loadtxt(tmp_path / "m.csv", delimiter=",")
    assert g.shape == (10, 10) and np.allclose(g, json.loads(out)["conductance_s"])
