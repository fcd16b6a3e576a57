"""The ``xbar`` command line itself: help, discovery, and that help stays light.

``xbar --help`` and ``xbar COMMAND --help`` must not import torch, botorch, the simulated
instruments or Qt: every command module imports those only in the function that runs it. The
checks run in a fresh interpreter (this test process has imported everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

from xbar.cli import main

COMMANDS = {
    "bench",
    "calibrate",
    "characterise",
    "check",
    "demo",
    "fab",
    "gui",
    "infer",
    "program",
    "read-map",
    "robustness",
    "sweep",
    "study",
    "train",
}
HEAVY = ("torch", "botorch", "sim_backends", "PyQt6", "pyqtgraph")

# Runs `xbar --help` then `xbar COMMAND --help` for every registered command in one fresh
# interpreter; after each, the heavy top-level packages imported so far (cumulative, so the
# first command that pulls one in is the one to blame).
_PROBE = """
import contextlib, io, json, sys
import argparse
from xbar.cli import build_parser, main

HEAVY = {heavy!r}
parser = build_parser()
sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
commands = sorted(sub.choices)
results = {{}}
for argv in [[]] + [[c] for c in commands]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*argv, "--help"])
            code = "returned"
        except SystemExit as exc:
            code = exc.code
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(HEAVY))
    results[" ".join(argv)] = {{"code": code, "out": out.getvalue(), "heavy": loaded}}
print(json.dumps({{"commands": commands, "results": results}}))
"""


@pytest.fixture(scope="module")
def help_runs() -> dict:
    """Exit code, stdout and heavy packages loaded after each ``--help``, from one fresh
    interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_every_command_is_discovered(help_runs: dict) -> None:
    assert set(help_runs["commands"]) == COMMANDS
    top = help_runs["results"][""]["out"]
    for name in COMMANDS:
        assert f"\n    {name}" in top, name


@pytest.mark.parametrize("command", ["", *sorted(COMMANDS)])
def test_help_exits_0_and_imports_no_heavy_package(help_runs: dict, command: str) -> None:
    run = help_runs["results"][command]
    assert run["code"] == 0
    prog = f"xbar {command}".strip()
    assert run["out"].startswith(f"usage: {prog} ")
    assert "-h, --help" in run["out"]
    assert run["heavy"] == [], f"`{prog} --help` imported {run['heavy']}"


def test_xbar_entry_point_help_in_a_process() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "xbar", "sweep", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: xbar sweep ")
    # -X importtime lists every module imported, one per line: "import time: ... | name"
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "xbar" in imported and "argparse" in imported
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))


def test_bench_module_arguments_appear_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`xbar bench NAME --help` imports that benchmark and shows its own options."""
    with pytest.raises(SystemExit) as exc:
        main(["bench", "io", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: xbar bench io ")
    assert "--json" in out and "--latency" in out and "--usb-latency" in out


def test_bench_help_lists_each_benchmark_with_its_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import bench.fab

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"fab {bench.fab.DESCRIPTION}" in out


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "bench" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: xbar" in capsys.readouterr().out


def test_an_unknown_option_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "io", "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == "xbar: error: unrecognized arguments: --bogus (see xbar --help)\n"
