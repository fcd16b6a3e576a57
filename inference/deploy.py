"""Run a trained network's matrix-vector products on a crossbar (METHODS sections 5 and 6).

The weights of each layer (``[W | b]``) are mapped to a differential conductance map
(:mod:`crossbar.mapping`), programmed with program-and-verify, and every layer's multiplication
of the test set is done by the crossbar; activations (ReLU) and the final argmax stay digital, as
in the paper's Analog Discovery 2 set-up. The result compares software and hardware accuracy,
keeps both output sets (for the paper's figure 7c histogram of hardware-minus-software outputs),
and estimates the array's energy per MVM with Yao et al.'s method.

Decisions (documented here, configurable through :class:`DeployOptions`):

* conductance window ``[g_min, g_max]`` = [1 µS, 20 µS]: inside what program-and-verify reaches
  on the perovskite devices with a 4 V pulse cap, and a 20× window;
* input calibration range of each layer = the largest |input| over the training set (raw features
  standardised for layer 1, hidden activations for the next), so the row voltages are fixed per
  unit of input and the bias row sits at its fixed read voltage;
* cells outside the network's blocks are not programmed (their rows are held at 0 V and their
  columns are not read, so they do not enter any product);
* energy per MVM ``E = Σ_ij V_i² G_ij t_read`` over the layer's block with the verified
  conductances; operations = 2·rows·cols of the block; the GPU reference is the V100 efficiency
  implied by the paper's two figures (27,548 / 270 ≈ 102 GOPS/W, assuming the first is in GOPS/W).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossbar.core import Crossbar
from crossbar.mapping import NetworkPlacement, inputs_to_voltages, place_network
from crossbar.programming import ProgramReport
from crossbar.progress import ProgressFn, relabelled
from inference.names import DEPLOY_TOL
from inference.training import TrainedModel

#: V100 energy efficiency implied by the paper (27,548 GOPS/W / 270), GOPS per W.
V100_GOPS_PER_W = 27548.0 / 270.0


@dataclass
class DeployOptions:
    """How a network is put on the array (conductances in S, voltages in V, times in s)."""

    g_min: float = 1e-6
    g_max: float = 20e-6
    v_read_max: float = 0.3  # largest row voltage of an MVM, far below SET/RESET
    v_bias: float = 0.2  # bias-row read voltage
    tol: float = DEPLOY_TOL  # program-and-verify relative tolerance
    max_pulses: int = 60
    #: program-and-verify algorithm (crossbar.programming.ALGORITHMS): "adaptive" (the drive
    #: follows each cell's measured response) or "ladder" (METHODS section 5: amplitude stepping
    #: up after each miss, the paper's procedure)
    algorithm: str = "adaptive"
    t_read: float = 1e-6  # read-pulse duration (TIA settling) for the energy estimate
    batch_size: int = 256


@dataclass
class DeploymentResult:
    """Software versus hardware on one crossbar run."""

    method: str
    n_points: int
    software_accuracy: float  # in [0, 1]
    hardware_accuracy: float  # in [0, 1]
    outputs_software: np.ndarray  # (n, classes) logits computed digitally
    outputs_hardware: np.ndarray  # (n, classes) logits from the crossbar's column currents
    labels: np.ndarray  # (n,)
    predictions_software: np.ndarray
    predictions_hardware: np.ndarray
    programming: dict[str, float]  # cells, converged fraction, stuck, mean pulses
    energy_per_mvm_j: float  # mean over the layers' MVMs of one inference
    ops_per_mvm: float
    efficiency_gops_per_w: float
    vs_v100: float  # efficiency ratio to the V100 reference
    bench_time_s: float  # backend clock time the run took (estimated real-bench time on twins)
    placement: list[dict[str, int]] = field(default_factory=list)

    @property
    def degradation(self) -> float:
        """Accuracy lost from software to hardware, in points of accuracy (fraction)."""
        return self.software_accuracy - self.hardware_accuracy

    @property
    def relative_degradation(self) -> float:
        """Accuracy lost relative to software, fraction (the paper's "% degradation")."""
        return self.degradation / self.software_accuracy if self.software_accuracy else 0.0

    @property
    def output_errors(self) -> np.ndarray:
        """Hardware minus software outputs, flattened (the paper's figure 7c)."""
        return (self.outputs_hardware - self.outputs_software).ravel()

    def summary(self) -> dict[str, Any]:
        """Scalar figures as a JSON-ready dict."""
        err = self.output_errors
        return {
            "method": self.method,
            "n_points": self.n_points,
            "software_accuracy": self.software_accuracy,
            "hardware_accuracy": self.hardware_accuracy,
            "degradation": self.degradation,
            "relative_degradation": self.relative_degradation,
            "output_error_mean": float(np.mean(err)),
            "output_error_std": float(np.std(err)),
            "programming": self.programming,
            "energy_per_mvm_j": self.energy_per_mvm_j,
            "ops_per_mvm": self.ops_per_mvm,
            "efficiency_gops_per_w": self.efficiency_gops_per_w,
            "vs_v100": self.vs_v100,
            "bench_time_s": self.bench_time_s,
            "placement": self.placement,
        }

    def per_point(self, n: int = 20) -> list[dict[str, int]]:
        """The paper's per-point view: label and software/hardware predictions of ``n`` points."""
        return [
            {
                "point": i,
                "label": int(self.labels[i]),
                "software": int(self.predictions_software[i]),
                "hardware": int(self.predictions_hardware[i]),
            }
            for i in range(min(n, self.n_points))
        ]

    def save(self, stem: str | Path) -> tuple[Path, Path]:
        """Write ``<stem>.json`` (summary, per-point view) and ``<stem>.npz`` (outputs)."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        js = stem.with_suffix(".json")
        js.write_text(json.dumps({**self.summary(), "per_point": self.per_point()}, indent=1))
        npz = stem.with_suffix(".npz")
        np.savez(
            npz,
            outputs_software=self.outputs_software,
            outputs_hardware=self.outputs_hardware,
            labels=self.labels,
        )
        return js, npz


def layer_ranges(trained: TrainedModel, x_train: np.ndarray) -> list[float]:
    """Input calibration range (max |input|) of every layer over the (transformed) train set."""
    ranges = []
    h = np.asarray(x_train, dtype=float)
    layers = trained.augmented_weights()
    for i, wb in enumerate(layers):
        ranges.append(float(max(np.max(np.abs(h)), 1e-12)))
        h = h @ wb[:, :-1].T + wb[:, -1]
        if i < len(layers) - 1:
            h = _activation(h, trained.activation)
    return ranges


def _activation(h: np.ndarray, name: str) -> np.ndarray:
    return np.maximum(h, 0.0) if name == "relu" else np.tanh(h)


def place_model(
    trained: TrainedModel,
    x_train: np.ndarray,
    shape: tuple[int, int],
    options: DeployOptions | None = None,
) -> NetworkPlacement:
    """Map and place a trained network on a ``shape`` array (MappingError if it does not fit)."""
    o = options or DeployOptions()
    layers = [(wb[:, :-1], wb[:, -1]) for wb in trained.augmented_weights()]
    return place_network(
        layers,
        shape=shape,
        g_min=o.g_min,
        g_max=o.g_max,
        v_bias=o.v_bias,
        x_max=layer_ranges(trained, x_train),
        v_read_max=o.v_read_max,
    )


def software_outputs(trained: TrainedModel, x: np.ndarray) -> np.ndarray:
    """Digital logits (n, classes) of transformed inputs, float64 (the reference)."""
    h = np.asarray(x, dtype=float)
    layers = trained.augmented_weights()
    for i, wb in enumerate(layers):
        h = h @ wb[:, :-1].T + wb[:, -1]
        if i < len(layers) - 1:
            h = _activation(h, trained.activation)
    return h


def crossbar_outputs(
    crossbar: Crossbar,
    placement: NetworkPlacement,
    x: np.ndarray,
    activation: str,
    options: DeployOptions | None = None,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits (n, classes) with every layer's MVM on the crossbar; activations stay digital.

    Returns the logits and the row-voltage batches applied per layer (for the energy estimate).
    """
    o = options or DeployOptions()
    h = np.asarray(x, dtype=float)
    applied = []
    n_layers = len(placement.layers)
    for i, m in enumerate(placement.layers):
        v_in, s_x = inputs_to_voltages(h, o.v_read_max, x_max=o.v_read_max / m.input_scale)
        v_rows = placement.row_voltages(i, v_in, input_scale=s_x)
        applied.append(v_rows)

        stage = f"MVM layer {i + 1}/{n_layers}"
        currents = crossbar.mvm(
            v_rows, batch_size=o.batch_size, progress=relabelled(progress, stage)
        )
        h = m.outputs(currents, input_scale=s_x)
        if i < n_layers - 1:
            h = _activation(h, activation)
    return h, applied


def energy_per_mvm(
    applied: list[np.ndarray], g_map: np.ndarray, placement: NetworkPlacement, t_read: float
) -> tuple[float, float]:
    """Mean energy (J) and operations of one MVM: ``E = Σ_ij V_i² G_ij t_read`` over each layer's
    block; operations = 2·rows·cols of the block (Yao et al. 2020, array only)."""
    energies, ops = [], []
    g = np.where(np.isfinite(g_map), g_map, 0.0)
    for m, v in zip(placement.layers, applied, strict=True):
        block = g[m.row_start : m.row_start + m.n_rows, m.col_start : m.col_start + m.n_cols]
        v_block = v[:, m.row_start : m.row_start + m.n_rows]
        e = (v_block**2) @ block.sum(axis=1) * t_read  # (n,) J
        energies.append(float(np.mean(e)))
        ops.append(2.0 * m.n_rows * m.n_cols)
    return float(np.mean(energies)), float(np.mean(ops))


def run_on_crossbar(
    crossbar: Crossbar,
    trained: TrainedModel,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    x_train: np.ndarray,
    options: DeployOptions | None = None,
    program: bool = True,
    progress: ProgressFn | None = None,
    should_abort: Callable[[], bool] | None = None,
) -> DeploymentResult:
    """Map, program and run a trained classifier on ``crossbar``; compare with software.

    ``x_test``/``x_train`` are transformed features (``dataset.x_test``). ``program=False`` skips
    programming (the array already holds this network). ``should_abort`` is polled between
    stages; the crossbar's own abort (``crossbar.abort()``) stops a stage in the middle.
    """
    o = options or DeployOptions()
    t0 = crossbar.now()
    placement = place_model(trained, x_train, crossbar.shape, o)
    targets = np.full(crossbar.shape, np.nan)
    used = placement.used_mask()
    targets[used] = placement.full_map()[used]

    def check() -> None:
        if should_abort is not None and should_abort():
            crossbar.abort()
            crossbar.shutdown()
            from crossbar.backend import OperationAborted

            raise OperationAborted("deployment aborted")

    check()
    if program:
        g_map, prog_summary = _program(crossbar, targets, o, progress)
    else:
        g_map = targets
        prog_summary = {"cells": 0.0, "fraction_converged": math.nan, "stuck": 0.0}
    check()
    x_test = np.asarray(x_test, dtype=float)
    y_test = np.asarray(y_test)
    out_sw = software_outputs(trained, x_test)
    out_hw, applied = crossbar_outputs(crossbar, placement, x_test, trained.activation, o, progress)
    e, ops = energy_per_mvm(applied, g_map, placement, o.t_read)
    eff = ops / e / 1e9 if e > 0 else math.inf  # GOPS/W = ops per nJ
    pred_sw = out_sw.argmax(axis=1)
    pred_hw = out_hw.argmax(axis=1)
    return DeploymentResult(
        method=trained.method,
        n_points=int(len(y_test)),
        software_accuracy=float(np.mean(pred_sw == y_test)),
        hardware_accuracy=float(np.mean(pred_hw == y_test)),
        outputs_software=out_sw,
        outputs_hardware=out_hw,
        labels=y_test,
        predictions_software=pred_sw,
        predictions_hardware=pred_hw,
        programming=prog_summary,
        energy_per_mvm_j=e,
        ops_per_mvm=ops,
        efficiency_gops_per_w=eff,
        vs_v100=eff / V100_GOPS_PER_W,
        bench_time_s=float(crossbar.now() - t0),
        placement=[
            {
                "layer": i + 1,
                "row_start": m.row_start,
                "rows": m.n_rows,
                "col_start": m.col_start,
                "cols": m.n_cols,
            }
            for i, m in enumerate(placement.layers)
        ],
    )


def _program(
    crossbar: Crossbar, targets: np.ndarray, o: DeployOptions, progress: ProgressFn | None
) -> tuple[np.ndarray, dict[str, float]]:
    """Program-and-verify the network's cells: (achieved map S, summary of the run)."""
    report: ProgramReport = crossbar.program_map(
        targets,
        progress=relabelled(progress, "program"),
        tol=o.tol,
        max_pulses=o.max_pulses,
        algorithm=o.algorithm,
    )
    summary = {
        "cells": float(len(report.cells)),
        "fraction_converged": float(report.fraction_converged),
        "stuck": float(report.n_stuck),
        "mean_pulses": float(report.mean_pulses),
    }
    return report.final_map(), summary


def result_dict(result: DeploymentResult) -> dict[str, Any]:
    """Summary plus per-point view (for JSON output)."""
    return {**result.summary(), "per_point": result.per_point()}


__all__ = [
    "DeployOptions",
    "DeploymentResult",
    "V100_GOPS_PER_W",
    "crossbar_outputs",
    "energy_per_mvm",
    "layer_ranges",
    "place_model",
    "result_dict",
    "run_on_crossbar",
    "software_outputs",
]
