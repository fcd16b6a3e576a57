"""Fault table: every operation × every fault on the simulated bench, through the real CLI.

For each operation (``sweep``: cyclic I-V sweep, ``read-map``, ``program``: program-and-verify a
map, ``infer``: a crossbar inference run = program the network + its MVMs) and each fault the
twins inject (``timeout``, ``garbled`` reply, ``connection_lost`` mid-run, instrument
``error_code``, ``compliance`` hit), the command is run in-process (``xbar.cli.main``) with a
bench TOML whose ``[simulation.faults.<instrument>]`` places the fault in the middle of the
operation (a clean dry run measures where the operation's transactions start and end). Then:

* ``records_lost``: readings, sweep points and MVM vectors the operation had measured
  (counted where the backend hands them on: ``InstrumentBackend._cell_reading``, the 6487's
  ``sweep_points(on_reading=...)``, ``InstrumentBackend.mvm``) minus those in the HDF5 data
  file — must be 0;
* ``outputs_off``: at the end the 6487 source is off, both AWG buses are at 0 V and every
  crossbar line floats (switch matrix released); ``array_isolated``: every line floats;
* ``exit_code`` and the one-line stderr message.

Where each fault goes: the 6487 for sweep, read-map and program (their measuring instrument);
the AD2 for inference (its MVMs: scope captures, AWG levels, routing) except ``compliance``,
which only the 6487 has (it fires during the inference run's program-and-verify). Extra rows
``<operation>-connection_lost[<other instrument>]`` lose the other instrument.

What "compliance" does per operation (see the commands' docstrings): a sweep records the
points with their compliance flag and goes on (exit 0); a read map or a program-and-verify
read records the reading, then stops with ``ComplianceError`` (exit 1).

A lost 6487 cannot be switched off over its dead bus (the twin, like the instrument, stays in
operate): its rows show ``outputs_off`` = 0 with ``array_isolated`` = 1 — the switch matrix
disconnects every device line — and the message says the 6487 could not be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import Row

DESCRIPTION = "operation x fault table on the simulated bench (records lost must be 0, outputs off)"

OPERATIONS = ("sweep", "read-map", "program", "infer")
FAULTS = ("timeout", "garbled", "connection_lost", "error_code", "compliance")
#: the instrument each operation's faults are injected into (compliance: always the 6487)
PRIMARY = {"sweep": "keithley", "read-map": "keithley", "program": "keithley", "infer": "ad2"}
#: injected error codes: a SCPI execution error on the 6487, a pydwf parameter error on the AD2
ERROR_CODES = {"keithley": -222, "ad2": 16}  # 16 = DwfErrorCode.InvalidParameter0
#: the program-map test targets (S): seven cells of rows 0 and 1, the rest left alone
PROGRAM_TARGETS = {
    (0, 0): 2e-6, (0, 1): 5e-6, (0, 2): 1e-5, (0, 3): 1.5e-5,
    (1, 0): 3e-6, (1, 1): 8e-6, (1, 2): 1.2e-5,
}  # fmt: skip

__all__ = [
    "CaseResult",
    "ERROR_CODES",
    "FAULTS",
    "OPERATIONS",
    "PRIMARY",
    "Probe",
    "Workspace",
    "fault_instrument",
    "fault_plan",
    "run_case",
    "run_cli",
    "run",
    "write_bench",
]


def fault_instrument(operation: str, fault: str) -> str:
    """Which twin gets the fault ("keithley" or "ad2")."""
    return "keithley" if fault == "compliance" else PRIMARY[operation]


def fault_plan(fault: str, after: int, instrument: str) -> dict[str, Any]:
    """The ``[simulation.faults.<instrument>]`` table firing ``fault`` after ``after``
    transactions."""
    return {
        "timeout": {"timeout_after": after},
        "garbled": {"garbled_after": after, "seed": 1},
        "connection_lost": {"connection_lost_after": after},
        "error_code": {"error_after": after, "error_code": ERROR_CODES[instrument]},
        "compliance": {"compliance_after": after},
    }[fault]


# ------------------------------------------------------------------------------ bench files


def write_bench(
    path: Path, faults: dict[str, dict[str, Any]] | None = None, **changes: Any
) -> Path:
    """A copy of the built-in ``sim`` bench as TOML at ``path`` with fault plans
    (``{"keithley": {...}, "ad2": {...}}``) and ``section__key=value`` changes."""
    from crossbar.config import load_bench_config, toml_text

    d = load_bench_config("sim").to_dict()
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        d.setdefault(section, {})[key] = value
    if faults:
        d.setdefault("simulation", {})["faults"] = faults
    path.write_text(toml_text(d))
    return path


# ------------------------------------------------------------------------------ running the CLI


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """``xbar.cli.main(argv)`` in-process: (exit code, stdout, stderr); argparse's SystemExit
    becomes its code."""
    from xbar.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return int(code), out.getvalue(), err.getvalue()


class Probe:
    """Counts what the backend measured and captures the twins of every bench opened, by
    wrapping (for the duration of a ``with`` block):

    * ``lab._open_twins`` → :attr:`backends` (with their SimHandles);
    * ``CrossbarPolicy._reading`` → :attr:`reads` (every cell reading made: read map,
      program-and-verify);
    * ``keithley6487_procedures.sweep_points``' ``on_reading`` → :attr:`sweep_points`;
    * ``InstrumentBackend.mvm`` → :attr:`mvm_vectors` (vectors returned), and :attr:`marks`
      ``"mvm"`` = the twins' transaction counts at the first MVM.
    """

    def __init__(self) -> None:
        self.backends: list[Any] = []
        self.reads = 0
        self.sweep_points = 0
        self.mvm_vectors = 0
        self.marks: dict[str, tuple[int, int]] = {}
        self.opened: list[tuple[int, int]] = []  # transaction counts right after each open
        self._stack = contextlib.ExitStack()

    @staticmethod
    def counts(backend: Any) -> tuple[int, int]:
        """(6487 transactions, AD2 pydwf calls) the twins' fault injectors counted so far."""
        h = backend.sim_handles
        return h.adapter.faults.count, h.dwf_library.faults.count

    def __enter__(self) -> Probe:
        import lab as cbench
        from crossbar.hardware import InstrumentBackend
        from crossbar.policy import CrossbarPolicy
        from instruments import keithley6487_procedures as procedures

        probe = self
        orig_open = cbench._open_twins
        orig_cell = CrossbarPolicy._reading
        orig_mvm = InstrumentBackend.mvm
        orig_sweep = procedures.sweep_points

        def open_twins(cfg):
            b = orig_open(cfg)
            probe.backends.append(b)
            probe.opened.append(probe.counts(b))
            return b

        def cell_reading(self, *a, **k):
            r = orig_cell(self, *a, **k)
            probe.reads += 1
            return r

        def mvm(self, row_voltages, **kw):
            if "mvm" not in probe.marks and getattr(self, "sim_handles", None) is not None:
                probe.marks["mvm"] = probe.counts(self)
            out = orig_mvm(self, row_voltages, **kw)
            probe.mvm_vectors += int(np.atleast_2d(out).shape[0])
            return out

        def sweep_points(k, voltages, *, on_reading=None, **kw):
            def counting(index, reading):
                probe.sweep_points += 1
                if on_reading is not None:
                    on_reading(index, reading)

            return orig_sweep(k, voltages, on_reading=counting, **kw)

        for owner, name, new in (
            (cbench, "_open_twins", open_twins),
            (CrossbarPolicy, "_reading", cell_reading),
            (InstrumentBackend, "mvm", mvm),
            (procedures, "sweep_points", sweep_points),
        ):
            old = owner.__dict__[name]
            setattr(owner, name, new)
            self._stack.callback(setattr, owner, name, old)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def backend(self) -> Any:
        """The last bench opened."""
        return self.backends[-1]


# ------------------------------------------------------------------------------ workspace


@dataclass
class Workspace:
    """Files shared by the runs: the program targets and (lazily) a trained model."""

    root: Path
    model: Path | None = None
    _phases: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)

    @property
    def targets(self) -> Path:
        path = self.root / "targets.csv"
        if not path.exists():
            t = np.full((10, 10), np.nan)
            for (r, c), g in PROGRAM_TARGETS.items():
                t[r, c] = g
            np.savetxt(path, t, delimiter=",")
        return path

    def trained_model(self) -> Path:
        """A small ERM two-moons model (trained once)."""
        if self.model is None:
            stem = self.root / "model" / "erm"
            code, out, err = run_cli(
                [
                    "train",
                    "--method",
                    "erm",
                    "--data",
                    "moons",
                    "--epochs",
                    "150",
                    "--out",
                    str(stem),
                ]
            )
            if code != 0:
                raise RuntimeError(f"training the test model failed: {err or out}")
            self.model = stem
        return self.model

    def argv(self, operation: str, bench: Path | str, run_dir: Path) -> list[str]:
        """The CLI arguments of ``operation`` writing into ``run_dir``."""
        data = str(run_dir / "data.h5")
        if operation == "sweep":
            return [
                "sweep",
                "--bench",
                str(bench),
                "--cell",
                "0,0",
                "--cycles",
                "2",
                "--compliance",
                "25e-6",
                "--data",
                data,
            ]
        if operation == "read-map":
            return ["read-map", "--bench", str(bench), "--data", data]
        if operation == "program":
            return [
                "program",
                "--bench",
                str(bench),
                "--targets",
                str(self.targets),
                "--data",
                data,
            ]
        if operation == "infer":
            return [
                "infer",
                "--bench",
                str(bench),
                "--model",
                str(self.trained_model()),
                "--test-points",
                "8",
                "--tol",
                "0.1",
                "--out",
                str(run_dir),
            ]
        raise ValueError(f"unknown operation {operation!r}; known {OPERATIONS}")

    def phases(self, operation: str) -> dict[str, tuple[int, int]]:
        """Transaction windows of a clean run: ``{"keithley": (start, end), "ad2": ...}``
        (inference: the AD2 window is the MVM phase, the 6487 window the programming)."""
        if operation not in self._phases:
            run_dir = self.root / f"dry-{operation}"
            run_dir.mkdir(parents=True, exist_ok=True)
            bench = write_bench(run_dir / "bench.toml")
            with Probe() as probe:
                code, out, err = run_cli(self.argv(operation, bench, run_dir))
            if code != 0:
                raise RuntimeError(f"clean {operation} run failed ({code}): {err.strip()}")
            k0, a0 = probe.opened[-1]
            k1, a1 = probe.counts(probe.backend)
            if operation == "infer":
                km, am = probe.marks["mvm"]
                self._phases[operation] = {"keithley": (k0, km), "ad2": (am, a1)}
            else:
                self._phases[operation] = {"keithley": (k0, k1), "ad2": (a0, a1)}
        return self._phases[operation]


# ------------------------------------------------------------------------------ one case


@dataclass
class CaseResult:
    """What one operation × fault run did (see the module docstring)."""

    operation: str
    fault: str
    instrument: str
    after: int
    exit_code: int
    stderr: str
    stdout: str
    fired: bool
    measured: dict[str, int]
    in_file: dict[str, int]
    keithley_off: bool
    awgs_off: bool
    released: bool
    data: Path | None
    handles: Any = None  # the twins (SimHandles) of the faulted run

    @property
    def case(self) -> str:
        base = f"{self.operation}-{self.fault}"
        return (
            base
            if self.instrument == fault_instrument(self.operation, self.fault)
            else (f"{base}[{self.instrument}]")
        )

    @property
    def records_lost(self) -> int:
        """Measured minus recorded (each kind counted separately, summed)."""
        return int(sum(max(self.measured[k] - self.in_file.get(k, 0), 0) for k in self.measured))

    @property
    def records_extra(self) -> int:
        return int(sum(max(self.in_file.get(k, 0) - self.measured[k], 0) for k in self.measured))

    @property
    def outputs_off(self) -> bool:
        return self.keithley_off and self.awgs_off and self.released

    @property
    def message(self) -> str:
        return self.stderr.strip()


def _in_file(operation: str, data: Path | None) -> dict[str, int]:
    from crossbar.datastore import read_iv_groups, read_mvm, read_records

    if data is None or not data.exists():
        return {}
    rec = read_records(data)
    ops = rec["operation"]
    out = {
        "read": int(np.sum(ops == "read")),
        "program-verify": int(np.sum(ops == "program-verify")),
        "iv": int(np.sum(ops == "iv")),
        "mvm": int(np.sum(ops == "mvm")),
    }
    out["iv-points"] = int(
        sum(np.isfinite(s["current"]).sum() for s in read_iv_groups(data).values())
    )
    out["mvm-rows"] = int(read_mvm(data)["inputs"].shape[0])
    return out


def _measured(operation: str, probe: Probe) -> dict[str, int]:
    if operation == "sweep":
        return {"iv": probe.sweep_points, "iv-points": probe.sweep_points}
    if operation == "read-map":
        return {"read": probe.reads}
    if operation == "program":
        return {"program-verify": probe.reads}
    return {"program-verify": probe.reads, "mvm": probe.mvm_vectors, "mvm-rows": probe.mvm_vectors}


def _data_file(operation: str, run_dir: Path) -> Path | None:
    if operation == "infer":
        found = sorted(run_dir.glob("*.h5"))
        return found[0] if found else None
    return run_dir / "data.h5"


def run_case(
    ws: Workspace,
    operation: str,
    fault: str,
    *,
    instrument: str | None = None,
    fraction: float = 0.5,
    run_dir: Path | None = None,
) -> CaseResult:
    """Run ``operation`` with ``fault`` on ``instrument`` (default :func:`fault_instrument`)
    placed at ``fraction`` of the operation's transaction window."""
    inst = instrument or fault_instrument(operation, fault)
    start, end = ws.phases(operation)[inst]
    after = int(start + max(1, round((end - start) * fraction)))
    run_dir = run_dir or ws.root / f"{operation}-{fault}-{inst}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    bench = write_bench(run_dir / "bench.toml", {inst: fault_plan(fault, after, inst)})
    with Probe() as probe:
        code, out, err = run_cli(ws.argv(operation, bench, run_dir))
    h = probe.backend.sim_handles
    injector = h.adapter.faults if inst == "keithley" else h.dwf_library.faults
    fired = bool(injector.fired) or (fault == "compliance" and injector.compliance)
    routing = h.sim_bench.routing()
    data = _data_file(operation, run_dir)
    return CaseResult(
        operation=operation,
        fault=fault,
        instrument=inst,
        after=after,
        exit_code=code,
        stderr=err,
        stdout=out,
        fired=fired,
        measured=_measured(operation, probe),
        in_file=_in_file(operation, data),
        keithley_off=not h.adapter.output_on,
        awgs_off=all(v == 0.0 for v in h.sim_bench.awg),
        released=all(x == "FLOAT" for x in routing[0] + routing[1]),
        data=data,
        handles=h,
    )


# ------------------------------------------------------------------------------ the benchmark


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--operations",
        default=",".join(OPERATIONS),
        help=f"comma-separated subset of {','.join(OPERATIONS)}",
    )
    p.add_argument(
        "--faults", default=",".join(FAULTS), help=f"comma-separated subset of {','.join(FAULTS)}"
    )
    p.add_argument("--keep", metavar="DIR", help="keep the runs' files in DIR")
    p.add_argument(
        "--messages",
        action="store_true",
        help="also print each case's one-line CLI message (stderr)",
    )


def _rows(r: CaseResult) -> list[Row]:
    return [
        Row(r.case, "records_lost", float(r.records_lost), "records"),
        Row(
            r.case,
            "records_measured",
            float(sum(v for k, v in r.measured.items() if k not in ("iv-points", "mvm-rows"))),
            "records",
        ),
        Row(r.case, "outputs_off", float(r.outputs_off), "bool"),
        Row(r.case, "array_isolated", float(r.released), "bool"),
        Row(r.case, "exit_code", float(r.exit_code), ""),
    ]


def cases(operations: Sequence[str], faults: Sequence[str]) -> Iterator[tuple[str, str, str]]:
    """(operation, fault, instrument): the table's cases plus the other instrument's lost
    connection."""
    for op in operations:
        for fault in faults:
            yield op, fault, fault_instrument(op, fault)
        if "connection_lost" in faults:
            other = "ad2" if PRIMARY[op] == "keithley" else "keithley"
            yield op, "connection_lost", other


def run(args: argparse.Namespace, log: Callable[[str], None] | None = None) -> list[Row]:
    import sys

    ops = [o.strip() for o in args.operations.split(",") if o.strip()]
    fts = [f.strip() for f in args.faults.split(",") if f.strip()]
    for o in ops:
        if o not in OPERATIONS:
            raise SystemExit(f"xbar bench faults: unknown operation {o!r}; known {OPERATIONS}")
    for f in fts:
        if f not in FAULTS:
            raise SystemExit(f"xbar bench faults: unknown fault {f!r}; known {FAULTS}")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="xbar-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root)
    rows: list[Row] = []
    try:
        for op, fault, inst in cases(ops, fts):
            r = run_case(ws, op, fault, instrument=inst)
            rows += _rows(r)
            if getattr(args, "messages", False):
                print(f"{r.case}: exit {r.exit_code}: {r.message}", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return rows
