"""Helpers shared by the CLI commands: opening a bench, output folders, option types.

The crossbar layer is imported inside the functions, so that registering a command (``xbar
--help``) never loads the bench machinery or the simulated instruments.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:
    from crossbar.config import BenchConfig
    from crossbar.core import Crossbar
    from lab import CheckReport


BENCH_HELP = '"sim" (built-in simulated bench) or BENCH.toml'
"""The usual help of ``--bench``."""


def add_command(
    sub: argparse._SubParsersAction, name: str, summary: str, doc: str, *, raw: bool = False
) -> argparse.ArgumentParser:
    """The parser of ``xbar NAME``: ``summary`` is its line in ``xbar --help``; its description
    is the first paragraph of ``doc`` (the module docstring), or all of ``doc`` laid out as
    written when ``raw``."""
    if raw:
        return sub.add_parser(
            name,
            help=summary,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    return sub.add_parser(name, help=summary, description=doc.split("\n\n")[0])


def add_bench_option(p: argparse.ArgumentParser, help: str = BENCH_HELP) -> None:
    """``--bench`` (default ``sim``): the bench to open."""
    p.add_argument("--bench", default="sim", help=help)


def bench_config(bench: str, *, profile: str | None = None, seed: int | None = None) -> BenchConfig:
    """Load a bench ("sim" or a TOML path), optionally overriding the simulated device profile
    and seed. Bad files become UserError (exit 2)."""
    from crossbar.config import BenchConfigError, load_bench_config

    try:
        cfg = load_bench_config(bench)
    except BenchConfigError as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"cannot read bench file {bench}: {exc.strerror or exc}") from exc
    sim = cfg.simulation
    if profile is not None:
        sim = dataclasses.replace(sim, profile=profile)
    if seed is not None:
        sim = dataclasses.replace(sim, seed=seed)
    return dataclasses.replace(cfg, simulation=sim)


def open_crossbar(
    cfg: BenchConfig,
    *,
    datafile: Path | None = None,
    recover: bool = False,
    flush_every: int = 16,
    **metadata: object,
) -> Crossbar:
    """Open the bench's backend with a data file (HDF5, appended as acquired).

    The data file is opened first, so a bad ``datafile`` (not an xbar data file, a directory,
    no permission) is a UserError before any instrument is touched; ``recover=True`` appends to
    a file a crashed run left open (see :class:`crossbar.datastore.DataStore`); ``flush_every``
    records per flush to disk (1: every record is on disk as soon as it is measured, so even a
    killed process loses at most the measurement in flight). If the bench cannot be opened the
    data file is closed again."""
    from crossbar.core import Crossbar
    from crossbar.datastore import DataStore, DataStoreError
    from lab import open_backend

    store = None
    if datafile is not None:
        try:
            datafile.parent.mkdir(parents=True, exist_ok=True)
            store = DataStore(
                datafile,
                metadata=dict(metadata),
                bench_config=cfg.to_dict(),
                recover=recover,
                flush_every=flush_every,
            )
        except DataStoreError as exc:
            raise UserError(f"data file: {exc}") from exc
        except OSError as exc:
            raise UserError(f"data file {datafile}: {exc.strerror or exc}") from exc
    try:
        backend = open_backend(cfg)
    except BaseException as exc:
        if store is not None:
            store.close()
        if isinstance(exc, (KeyError, ValueError)):
            raise UserError(f"cannot open bench {cfg.name!r}: {exc}") from exc
        raise
    return Crossbar(backend, datastore=store)


def make_dir(path: Path, message: str) -> Path:
    """Create the folder ``path`` (and its parents); if that fails, UserError with ``message``
    formatted with ``path`` and ``err`` (the system's reason, e.g. "Permission denied")."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(message.format(path=path, err=exc.strerror)) from exc
    return path


def int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``lo``, else a one-line argument error."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if n < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {n}")
        return n

    return parse


def add_bo_arguments(p: argparse.ArgumentParser) -> None:
    """``--bo-init`` and ``--bo-iters``: BayesMulti's Bayesian optimisation of (p1, p2)."""
    p.add_argument("--bo-init", type=int, default=3, help="random initial BO points (default 3)")
    p.add_argument("--bo-iters", type=int, default=10, help="BO iterations (default 10)")


def bo_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The BO options of ``args`` as keyword arguments of the inference training functions."""
    return {
        "n_init": args.bo_init,
        "n_iter": args.bo_iters,
        "n_eval_trials": args.eval_trials,
        "noise_site": args.noise_site,
        "seed": args.seed,
    }


def check_bench(
    cfg: BenchConfig, *, cell: tuple[int, int], read_voltage: float, faults: list[str]
) -> CheckReport:
    """Run the bench self-test (:func:`lab.check.run_checks`) — the CLI's other way into a
    bench. Bad faults, cell or voltage are refused (UserError, exit 2) before anything opens."""
    from crossbar.config import BenchConfigError
    from lab import run_checks

    try:
        return run_checks(cfg, cell=cell, read_voltage=read_voltage, faults=faults)
    except BenchConfigError as exc:
        raise UserError(str(exc)) from None
