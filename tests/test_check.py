"""``xbar check`` / :func:`lab.check.run_checks`: the bench self-test on the simulated bench,
each injected fault naming its item, the real-bench path on a machine without VISA or
WaveForms, and the outputs left off whatever failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

import lab
import lab.check as check
from crossbar.config import BenchConfigError, load_bench_config, parse_bench_config
from xbar.cli import main

ITEMS = [
    "VISA library",
    "6487 identity",
    "line frequency",
    "interlock",
    "zero check",
    "AD2 found",
    "switch matrix walk",
    "cell read (0, 0)",
]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def handles_seen(monkeypatch) -> list:
    """The twins every check builds (to look at them after the check closed them)."""
    seen: list = []
    build = lab._sim_handles

    def spy(cfg):
        seen.append(build(cfg))
        return seen[-1]

    monkeypatch.setattr(check, "_sim_handles", spy)
    return seen


def assert_left_safe(handles) -> None:
    """Every output off and the matrix released on the twins after a check."""
    assert not handles.adapter.output_on and handles.adapter.zero_check
    assert handles.sim_bench.routing() == (["FLOAT"] * 10, ["FLOAT"] * 10)
    assert handles.sim_bench.awg == [0.0, 0.0]


def test_the_simulated_bench_passes_every_item(capsys, handles_seen) -> None:
    code, out, err = run_cli(["check", "--bench", "sim"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert [ln.split()[0] for ln in lines[:-1]] == ["PASS"] * 8
    assert [ln[6:29].strip() for ln in lines[:-1]] == ITEMS
    assert lines[-1] == "bench 'sim': ready (8 items checked)"
    assert "KEITHLEY INSTRUMENTS INC. MODEL 6487" in lines[1]
    assert "60 Hz: NPLC 0.01 to 6" in lines[2] and "20 lines conduct at 0.1 V" in lines[6]
    (handles,) = handles_seen
    assert_left_safe(handles)
    # the check applied nothing beyond 0.1 V
    levels = [float(c.split()[1]) for c in handles.adapter.commands if c.startswith("SOUR:VOLT ")]
    assert levels and max(abs(v) for v in levels) <= 0.1


# fault -> (the item that fails, the items skipped because they need it, a word of the detail)
FAULT_CASES = {
    "interlock-open": ("interlock", [], "SOUR:VOLT:INT:FAIL? = 1"),
    "no-ad2": ("AD2 found", ["switch matrix walk", "cell read (0, 0)"], "No Digilent"),
    "no-keithley": (
        "6487 identity",
        ["line frequency", "interlock", "zero check", "switch matrix walk", "cell read (0, 0)"],
        "connection lost",
    ),
    "keithley-error": (
        "6487 identity",
        ["line frequency", "interlock", "zero check", "switch matrix walk", "cell read (0, 0)"],
        '-113,"Undefined header"',
    ),
    "open-row": ("switch matrix walk", ["cell read (0, 0)"], "row 0:"),
}


def test_every_fault_has_a_case() -> None:
    assert set(FAULT_CASES) == set(check.FAULTS)


@pytest.mark.parametrize("fault", sorted(FAULT_CASES))
def test_an_injected_fault_names_its_item_and_exits_1(fault, capsys, handles_seen) -> None:
    failing, skipped, word = FAULT_CASES[fault]
    code, out, err = run_cli(["check", "--fault", fault], capsys)
    assert code == 1, err
    lines = out.strip().splitlines()
    assert lines[-1] == f"bench 'sim': NOT ready: failed {failing}"
    by_name = {ln[6:29].strip(): ln for ln in lines[:-1]}
    assert by_name[failing].startswith("FAIL") and word in by_name[failing]
    assert " -> " in by_name[failing]  # what to do
    assert sorted(n for n, ln in by_name.items() if ln.startswith("SKIP")) == sorted(skipped)
    others = set(ITEMS) - {failing, *skipped}
    assert all(by_name[n].startswith("PASS") for n in others)
    assert_left_safe(handles_seen[0])


def test_json_report(capsys) -> None:
    code, out, _ = run_cli(["check", "--fault", "no-ad2", "--json", "--cell", "2,3"], capsys)
    report = json.loads(out)
    assert code == 1 and report["passed"] is False and report["failed"] == ["AD2 found"]
    assert [i["name"] for i in report["items"]][-1] == "cell read (2, 3)"
    ad2 = report["items"][5]
    assert ad2["status"] == "fail" and "WaveForms" in ad2["advice"]


def test_line_frequency_of_a_50hz_bench() -> None:
    d = load_bench_config("sim").to_dict()
    d["simulation"]["line_frequency_hz"] = 50
    report = check.run_checks(parse_bench_config(d, origin="test"))
    assert report.passed
    assert report.items[2].detail == "50 Hz: NPLC 0.01 to 5"


def test_physics_bench_reads_the_cell_and_skips_the_instruments() -> None:
    d = load_bench_config("sim").to_dict()
    d["bench"]["backend"] = "physics"
    report = check.run_checks(parse_bench_config(d, origin="test"), cell=(4, 5))
    assert [i.status for i in report.items] == ["skip"] * 7 + ["pass"]
    assert report.passed and report.items[-1].detail.startswith("G = ")


def test_real_bench_without_visa_or_waveforms_says_what_to_install(monkeypatch) -> None:
    """A real bench on this machine: no VISA library, no WaveForms runtime. The VISA and AD2
    items fail with what to install; the items that need them are skipped; nothing is left
    open."""
    import pydwf

    def no_runtime():
        raise pydwf.PyDwfError("libdwf.so: cannot open shared object file")

    monkeypatch.setattr(check, "_visa_libraries", lambda: [])
    monkeypatch.setattr(pydwf, "DwfLibrary", no_runtime)
    cfg = load_bench_config("crossbar/benches/example_hardware.toml")
    report = check.run_checks(cfg)
    status = {i.name: i.status for i in report.items}
    assert status == {
        "VISA library": "fail",
        "6487 identity": "skip",
        "line frequency": "skip",
        "interlock": "skip",
        "zero check": "skip",
        "AD2 found": "fail",
        "switch matrix walk": "skip",
        "cell read (0, 0)": "skip",
    }
    visa, ad2 = report.items[0], report.items[5]
    assert "NI-VISA" in visa.advice and "pyvisa-py" in visa.advice
    assert "cannot be loaded" in ad2.detail and "WaveForms runtime" in ad2.advice


def test_faults_only_on_a_simulated_bench_and_by_name() -> None:
    with pytest.raises(BenchConfigError, match="unknown; allowed interlock-open"):
        check.with_faults(load_bench_config("sim"), ["lid-ajar"])
    real = load_bench_config("crossbar/benches/example_hardware.toml")
    with pytest.raises(BenchConfigError, match="only on a simulated bench"):
        check.with_faults(real, ["no-ad2"])
    cfg = check.with_faults(load_bench_config("sim"), ["interlock-open", "open-row"])
    assert cfg.simulation.faults["keithley"].interlock_open
    assert cfg.simulation.faults["ad2"].open_row == 0


@pytest.mark.slow
def test_hardware_tier_runs_with_a_bench_and_is_skipped_with_the_reason_without() -> None:
    """``pytest -m hardware --bench sim`` runs the tier (on the simulated bench); the README's
    plain ``python -m pytest`` skips it, naming what to do."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_hardware_tier.py"]

    def pytest_run(*extra: str) -> str:
        proc = subprocess.run(
            [*base, *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
        return proc.stdout + proc.stderr

    ran = pytest_run("-q", "-m", "hardware", "--bench", "sim")
    assert "4 passed" in ran, ran
    skipped = pytest_run("-q", "-rs")
    assert "4 skipped" in skipped, skipped
    assert "needs a bench: run `python -m pytest -m hardware --bench FILE`" in skipped
