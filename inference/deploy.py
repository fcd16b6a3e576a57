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

The deployment loop (each step off by default, switched on in :class:`DeployOptions`):

* ``fault_aware`` (needs ``profile``, the array's measured deployment profile): the layers go on
  rows and columns that avoid the profile's stuck cells, each with the window its cells reach
  (:func:`crossbar.fault_placement.choose_slots`); ``DeploymentResult.placement`` says where and
  why. MappingError when the network does not fit around the stuck cells.
* ``chip_in_loop`` (needs ``y_train``): progressive programming (NeuRRAM; Yao et al. 2020):
  layer 1 is programmed, its outputs on ``loop_points`` training inputs are measured through the
  crossbar, the later layers are fine-tuned in software (torch, ``finetune_steps`` of Adam on
  the cross-entropy) on those measured activations (clipped to the layer's trained input range, as its
  row voltages will be; ``loop_range="measured"`` re-calibrates the range on them instead) and
  the next layer is mapped and programmed; and so on. Physics bench, ERM, 200 test points,
  hardware accuracy without / with chip in the loop ("trained" range; "measured"), bench seeds
  0–5 of ``typical``: 0.57 / 0.85 (0.80); seeds 0–4 of ``paper``: 0.70 / 0.77 (0.65). Each
  layer is measured ``loop_settle`` s after its programming (freshly verified cells relax and
  some filaments dissolve; measured at once, chip in the loop lost 32 points on a typical seed
  whose cells moved after the measurement). After the last layer (``readout_calibration``)
  its outputs on the same points are measured and a digital gain and offset per class are fitted
  to the labels (the last layer's own programming errors cannot be fine-tuned away); they are
  applied to the hardware logits.
* ``drift_compensation``: right after a layer is programmed, a reference is read through it
  (:func:`reference_read`: by default each row of its block alone at ``v_read_max``, the sum of
  ``|I⁺ − I⁻|`` — the realised weights' scale); right before the test MVMs it is read again and
  the layer's outputs are scaled by the ratio then / now: global drift compensation as aihwkit's
  ``GlobalDriftCompensation``. (The deployment noise model, :mod:`inference.hardware_model`,
  uses every row at once and the summed column currents, ``reference="total"`` here; on the
  ``paper`` preset that total falls after a day while the weights grow — the cells parked at
  g_min dissolve — so it scales the wrong way.)

``settle`` (s, bench clock) waits between programming and the test MVMs (``Crossbar.wait``):
relaxation and drift act there.
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
from crossbar.deployment_profile import DeploymentProfile
from crossbar.mapping import NetworkPlacement, inputs_to_voltages, place_network, snap_to_levels
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
    #: place the layers around the profile's stuck cells, each in the window its cells reach
    fault_aware: bool = False
    #: progressive programming with software fine-tuning on measured activations (needs y_train)
    chip_in_loop: bool = False
    #: scale each layer's outputs by a reference read (right after programming / at inference)
    drift_compensation: bool = False
    #: the array's measured deployment profile (``xbar characterise``); needed by fault_aware
    profile: DeploymentProfile | None = None
    #: chip-in-the-loop: training inputs measured through the crossbar, Adam steps, learning rate
    loop_points: int = 300
    finetune_steps: int = 300
    finetune_lr: float = 0.01
    #: chip-in-the-loop: after the last layer, fit a digital gain and offset per class to the
    #: measured outputs of the training points (the last layer's own errors are not fine-tuned)
    readout_calibration: bool = True
    #: chip-in-the-loop: the next layer's input range: "measured" (max |activation| measured
    #: through the programmed layers) or "trained" (the software range; measured activations
    #: beyond it are clipped, as the row voltages will be)
    loop_range: str = "trained"
    #: chip-in-the-loop: s (bench clock) to wait after a layer is programmed before its outputs
    #: are measured, so the fine-tuning sees the layer as relaxed, not as verified (0: at once)
    loop_settle: float = 30.0
    #: drift compensation: the reference ("differential": Σ|I⁺ − I⁻| of each row alone;
    #: "total": Σ column currents of every row at once, as the noise model) and its repeats
    reference: str = "differential"
    reference_repeats: int = 4
    #: level-aware mapping (module docstring): bias and a per-output scale in the digital
    #: periphery; on a device of discrete levels (the profile's measured level conductances)
    #: every cell's target is a pair of levels, and the network is first fine-tuned in software
    #: to that grid (quantisation-aware, ``level_steps`` of Adam; needs y_train)
    levels: bool = False
    level_steps: int = 1000
    #: program-and-verify tolerance of cells on a discrete level (its spread is the device's)
    level_tol: float = 0.25
    #: settle-and-refresh: ``refresh_rounds`` times, wait ``refresh_wait`` s, verify every
    #: programmed cell at ``refresh_tol`` and reprogram those a dissolving filament or
    #: relaxation has moved away
    refresh: bool = False
    refresh_rounds: int = 3
    refresh_wait: float = 10.0
    refresh_tol: float = 0.3
    refresh_v_read: float = 0.2  # V, the verify reads' voltage (unselected lines grounded)


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
    placement: list[dict[str, Any]] = field(default_factory=list)
    #: the loop steps that ran and what they measured (fine-tuning, drift-compensation ratios)
    loop: dict[str, Any] = field(default_factory=dict)
    #: (rows, cols) S, the conductances programmed (as last mapped), NaN on unused cells
    target_map: np.ndarray | None = field(default=None, repr=False)

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
            "loop": self.loop,
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
    layers = [(wb[:, :-1], wb[:, -1]) for wb in trained.augmented_weights()]
    return network_ranges(layers, trained.activation, x_train)


def _activation(h: np.ndarray, name: str) -> np.ndarray:
    return np.maximum(h, 0.0) if name == "relu" else np.tanh(h)


def place_model(
    trained: TrainedModel,
    x_train: np.ndarray,
    shape: tuple[int, int],
    options: DeployOptions | None = None,
) -> NetworkPlacement:
    """Map and place a trained network on a ``shape`` array (MappingError if it does not fit)."""
    return _place(trained, x_train, shape, options or DeployOptions())[0]


#: One layer's digital periphery (``levels``): outputs = gain · crossbar outputs + bias, (out,).
Periphery = tuple[np.ndarray, np.ndarray]


def _place(
    trained: TrainedModel,
    x_train: np.ndarray,
    shape: tuple[int, int],
    o: DeployOptions,
    layers: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[NetworkPlacement, list[Any], list[Periphery] | None]:
    """The placement, with ``fault_aware`` the chosen slots (else []), and with ``levels`` the
    digital periphery of every layer (else None). ``layers``: (W, b) to place instead of the
    trained ones."""
    if layers is None:
        layers = [(wb[:, :-1], wb[:, -1]) for wb in trained.augmented_weights()]
    ranges = network_ranges(layers, trained.activation, x_train)
    periphery = None
    on_array: list[tuple[np.ndarray, np.ndarray | None]] = list(layers)
    if o.levels:
        on_array, periphery = [], []
        for w, b in layers:
            wn, gain = normalise_outputs(w)
            on_array.append((wn, None))
            periphery.append((gain, np.asarray(b, dtype=float).copy()))
    slots: list[Any] = fault_slots(on_array, shape, o) if o.fault_aware else []
    windows = [(s.g_min, s.g_max) for s in slots] if slots else None
    lv = device_levels(o)
    if lv is not None:
        windows = [(lv[0], lv[-1])] * len(on_array)
    placement = place_network(
        on_array,
        shape=shape,
        g_min=o.g_min,
        g_max=o.g_max,
        v_bias=o.v_bias,
        x_max=ranges,
        v_read_max=o.v_read_max,
        slots=[(s.rows, s.cols) for s in slots] if slots else None,
        windows=windows,
    )
    if lv is not None:
        placement = NetworkPlacement(
            shape=placement.shape, layers=tuple(snap_to_levels(m, lv) for m in placement.layers)
        )
    return placement, slots, periphery


def network_ranges(
    layers: list[tuple[np.ndarray, np.ndarray]], activation: str, x_train: np.ndarray
) -> list[float]:
    """Input calibration range (max |input|) of every layer ``(W, b)`` over the train set."""
    ranges = []
    h = np.asarray(x_train, dtype=float)
    for i, (w, b) in enumerate(layers):
        ranges.append(float(max(np.max(np.abs(h)), 1e-12)))
        h = h @ np.asarray(w).T + np.asarray(b)
        if i < len(layers) - 1:
            h = _activation(h, activation)
    return ranges


def normalise_outputs(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W with every output's row scaled to max |w| = 1, the scales (out,)): the crossbar holds
    the first, the digital periphery multiplies its outputs by the second."""
    w = np.asarray(w, dtype=float)
    gain = np.max(np.abs(w), axis=1)
    gain = np.where(gain > 0, gain, 1.0)
    return w / gain[:, None], gain


def device_levels(o: DeployOptions) -> tuple[float, ...] | None:
    """The device's discrete levels (S, ascending) that ``levels`` maps onto: the profile's
    measured level conductances; None when ``levels`` is off or the device is analog."""
    if not o.levels:
        return None
    if o.profile is None:
        raise ValueError(
            "level-aware mapping needs the array's deployment profile (xbar characterise)"
        )
    pr = o.profile.pulse_response
    lv = sorted(float(g) for g in pr.level_conductances)
    return tuple(lv) if pr.levels >= 2 and len(lv) >= 2 else None


def fault_slots(
    layers: list[tuple[np.ndarray, np.ndarray | None]], shape: tuple[int, int], o: DeployOptions
) -> list[Any]:
    """Rows, columns and window of each layer around the profile's stuck cells
    (:func:`crossbar.fault_placement.choose_slots`); ValueError without a profile, MappingError
    (one line) when the layers do not fit."""
    from crossbar.fault_placement import choose_slots
    from inference.hardware_model import check_profile_shape

    p = o.profile
    if p is None:
        raise ValueError(
            "fault-aware deployment needs the array's deployment profile (xbar characterise)"
        )
    check_profile_shape(p, shape, "the crossbar")
    stuck = np.zeros(tuple(p.shape), dtype=bool)
    for r, c in p.window.stuck:
        stuck[r, c] = True
    dims = [(w.shape[1] + (0 if b is None else 1), 2 * w.shape[0]) for w, b in layers]
    return choose_slots(
        dims,
        stuck,
        np.asarray(p.window.g_min, dtype=float),
        np.asarray(p.window.g_max, dtype=float),
        g_min=o.g_min,
        g_max=o.g_max,
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
    gains: list[float] | None = None,
    periphery: list[Periphery] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits (n, classes) with every layer's MVM on the crossbar; activations stay digital.

    ``gains``: a factor per layer on its outputs (drift compensation); ``periphery``: per layer
    the digital gain and bias (``levels``). Returns the logits and the row-voltage batches
    applied per layer (for the energy estimate).
    """
    o = options or DeployOptions()
    h = np.asarray(x, dtype=float)
    applied = []
    n_layers = len(placement.layers)
    for i in range(n_layers):
        h, v_rows = layer_outputs(crossbar, placement, i, h, o, progress)
        if gains is not None:
            h = h * gains[i]
        if periphery is not None:
            h = h * periphery[i][0] + periphery[i][1]
        applied.append(v_rows)
        if i < n_layers - 1:
            h = _activation(h, activation)
    return h, applied


def layer_outputs(
    crossbar: Crossbar,
    placement: NetworkPlacement,
    layer: int,
    h: np.ndarray,
    o: DeployOptions,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One layer's outputs (n, out) of inputs ``h`` (n, in) computed by the crossbar, and the row
    voltages (n, rows) V applied."""
    m = placement.layers[layer]
    v_in, s_x = inputs_to_voltages(h, o.v_read_max, x_max=o.v_read_max / m.input_scale)
    v_rows = placement.row_voltages(layer, v_in, input_scale=s_x)
    stage = f"MVM layer {layer + 1}/{len(placement.layers)}"
    currents = crossbar.mvm(v_rows, batch_size=o.batch_size, progress=relabelled(progress, stage))
    return m.outputs(currents, input_scale=s_x), v_rows


def reference_read(
    crossbar: Crossbar, placement: NetworkPlacement, layer: int, o: DeployOptions
) -> float:
    """Drift compensation's reference of ``layer``, A (mean of ``reference_repeats`` reads).

    ``o.reference = "differential"``: each row of the block alone at ``v_read_max`` (one MVM per
    row, other rows at 0 V), the sum over rows and outputs of ``|I⁺ − I⁻|`` — the scale of the
    weights the block realises (Σ|ΔG|·V), insensitive to the ``g_min`` baseline (cells parked at
    g_min that dissolve or drift change the total current but not the weights); ``"total"``:
    every row at ``v_read_max`` at once, the sum of the block's column currents (the deployment
    noise model's reference)."""
    m = placement.layers[layer]
    rows, cols = list(m.rows), list(m.cols)
    reps = max(1, int(o.reference_repeats))
    if o.reference == "total":
        v = np.zeros((reps, placement.shape[0]))
        v[:, rows] = o.v_read_max
        currents = crossbar.mvm(v, batch_size=o.batch_size)
        return float(np.mean(currents[:, cols].sum(axis=1)))
    if o.reference != "differential":
        raise ValueError(f"reference must be 'differential' or 'total', got {o.reference!r}")
    v = np.zeros((reps * len(rows), placement.shape[0]))
    for k, r in enumerate(rows):
        v[k * reps : (k + 1) * reps, r] = o.v_read_max
    block = crossbar.mvm(v, batch_size=o.batch_size)[:, cols]
    return float(np.abs(block[:, 0::2] - block[:, 1::2]).sum() / reps)


def energy_per_mvm(
    applied: list[np.ndarray], g_map: np.ndarray, placement: NetworkPlacement, t_read: float
) -> tuple[float, float]:
    """Mean energy (J) and operations of one MVM: ``E = Σ_ij V_i² G_ij t_read`` over each layer's
    block; operations = 2·rows·cols of the block (Yao et al. 2020, array only)."""
    energies, ops = [], []
    g = np.where(np.isfinite(g_map), g_map, 0.0)
    for m, v in zip(placement.layers, applied, strict=True):
        block = m.block(g)
        v_block = v[:, list(m.rows)]
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
    y_train: np.ndarray | None = None,
    settle: float = 0.0,
) -> DeploymentResult:
    """Map, program and run a trained classifier on ``crossbar``; compare with software.

    ``x_test``/``x_train`` are transformed features (``dataset.x_test``); ``y_train`` the
    training labels (needed by ``options.chip_in_loop``). ``program=False`` skips programming
    (the array already holds this network). ``settle`` s of bench time pass between programming
    and the test MVMs. The loop steps of ``options`` are in the module docstring.
    ``should_abort`` is polled between stages; the crossbar's own abort (``crossbar.abort()``)
    stops a stage in the middle.
    """
    o = options or DeployOptions()
    settle = _checked_run(o, settle, y_train, program)
    t0 = crossbar.now()
    loop: dict[str, Any] = {}
    layers = _level_finetune(trained, x_train, y_train, o, loop) if o.levels else None
    placement, slots, periphery = _place(trained, x_train, crossbar.shape, o, layers)
    targets = np.full(crossbar.shape, np.nan)
    used = placement.used_mask()
    targets[used] = placement.full_map()[used]

    check = _abort_check(crossbar, should_abort)
    check()
    placement, g_map, prog_summary, refs0 = _program_stage(
        crossbar, trained, placement, targets, x_train, y_train, o, progress, check, program, loop,
        periphery,
    )  # fmt: skip
    if periphery is not None:
        loop.setdefault("levels", {})["periphery"] = [
            {"gain": g.tolist(), "bias": b.tolist()} for g, b in periphery
        ]
    check()
    if settle > 0:
        crossbar.wait(settle)
    gains = _drift_gains(crossbar, placement, o, refs0, loop) if o.drift_compensation else None
    if o.fault_aware:
        loop["fault_aware"] = {"stuck_in_profile": [list(c) for c in o.profile.window.stuck]}  # type: ignore[union-attr]
    if settle > 0:
        loop["settle_s"] = settle
    x_test = np.asarray(x_test, dtype=float)
    y_test = np.asarray(y_test)
    out_sw = software_outputs(trained, x_test)
    out_hw, applied = crossbar_outputs(
        crossbar, placement, x_test, trained.activation, o, progress, gains, periphery
    )
    readout = loop.get("chip_in_loop", {}).get("readout")
    if readout is not None:
        out_hw = out_hw * np.asarray(readout["gain"]) + np.asarray(readout["offset"])
    e, ops = energy_per_mvm(applied, g_map, placement, o.t_read)
    eff = ops / e / 1e9 if e > 0 else math.inf  # GOPS/W = ops per nJ
    return DeploymentResult(
        method=trained.method,
        n_points=int(len(y_test)),
        software_accuracy=float(np.mean(out_sw.argmax(axis=1) == y_test)),
        hardware_accuracy=float(np.mean(out_hw.argmax(axis=1) == y_test)),
        outputs_software=out_sw,
        outputs_hardware=out_hw,
        labels=y_test,
        predictions_software=out_sw.argmax(axis=1),
        predictions_hardware=out_hw.argmax(axis=1),
        programming=prog_summary,
        energy_per_mvm_j=e,
        ops_per_mvm=ops,
        efficiency_gops_per_w=eff,
        vs_v100=eff / V100_GOPS_PER_W,
        bench_time_s=float(crossbar.now() - t0),
        placement=placement_report(placement, slots),
        loop=loop,
        target_map=np.where(placement.used_mask(), placement.full_map(), np.nan),
    )


def _level_finetune(
    trained: TrainedModel,
    x_train: np.ndarray,
    y_train: np.ndarray | None,
    o: DeployOptions,
    loop: dict[str, Any],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``levels``: the network's layers fine-tuned in software to the device's level grid
    (quantisation-aware; unchanged on an analog device); what was done goes to ``loop``."""
    from .finetune import LevelGrid, finetune_layers

    layers = [(wb[:, :-1].copy(), wb[:, -1].copy()) for wb in trained.augmented_weights()]
    lv = device_levels(o)
    info: dict[str, Any] = {"levels_s": None if lv is None else list(lv)}
    if lv is not None:
        layers, info["finetune"] = finetune_layers(
            layers,
            np.asarray(x_train, dtype=float),
            np.asarray(y_train).astype(int),
            trained.activation,
            steps=o.level_steps,
            lr=o.finetune_lr,
            grids=[LevelGrid(lv)] * len(layers),
        )
    loop["levels"] = info
    return layers


def _abort_check(crossbar: Crossbar, should_abort: Callable[[], bool] | None) -> Callable[[], None]:
    """A check between stages: when ``should_abort()`` says so, abort the crossbar, switch the
    outputs off and raise OperationAborted."""

    def check() -> None:
        if should_abort is not None and should_abort():
            crossbar.abort()
            crossbar.shutdown()
            from crossbar.backend import OperationAborted

            raise OperationAborted("deployment aborted")

    return check


def _program_stage(
    crossbar: Crossbar,
    trained: TrainedModel,
    placement: NetworkPlacement,
    targets: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray | None,
    o: DeployOptions,
    progress: ProgressFn | None,
    check: Callable[[], None],
    program: bool,
    loop: dict[str, Any],
    periphery: list[Periphery] | None = None,
) -> tuple[NetworkPlacement, np.ndarray, dict[str, float], list[float]]:
    """Programming (all at once, progressively with chip-in-the-loop, or not at all):
    (placement, conductance map S, programming summary, drift reference reads right after)."""
    refs0: list[float] = []
    if program and o.chip_in_loop:
        placement, g_map, prog_summary, refs0, loop["chip_in_loop"] = _progressive(
            crossbar, trained, placement, x_train, y_train, o, progress, check, periphery
        )
    elif program:
        g_map, prog_summary = _program(crossbar, targets, o, progress)
    else:
        g_map = targets
        prog_summary = {"cells": 0.0, "fraction_converged": math.nan, "stuck": 0.0}
    if o.drift_compensation and not refs0:  # right after programming (or now)
        refs0 = [reference_read(crossbar, placement, i, o) for i in range(len(placement.layers))]
    return placement, g_map, prog_summary, refs0


def _drift_gains(
    crossbar: Crossbar,
    placement: NetworkPlacement,
    o: DeployOptions,
    refs0: list[float],
    loop: dict[str, Any],
) -> list[float]:
    """Per layer: the reference read right after programming over the one now (recorded in
    ``loop["drift_compensation"]``), the factor its outputs are scaled by."""
    refs_t = [reference_read(crossbar, placement, i, o) for i in range(len(placement.layers))]
    gains = [a / b if b > 0 else 1.0 for a, b in zip(refs0, refs_t, strict=True)]
    loop["drift_compensation"] = {
        "reference_programmed_a": refs0,
        "reference_inference_a": refs_t,
        "gains": gains,
    }
    return gains


def _checked_run(
    o: DeployOptions, settle: float, y_train: np.ndarray | None, program: bool
) -> float:
    """``settle`` as a float, once the options of one deployment fit together (ValueError)."""
    settle = float(settle)
    if not (math.isfinite(settle) and settle >= 0):
        raise ValueError(f"settle must be a time >= 0 s, got {settle}")
    if o.chip_in_loop and y_train is None:
        raise ValueError("chip-in-the-loop fine-tuning needs y_train (the training labels)")
    if o.levels and y_train is None:
        raise ValueError("level-aware mapping fine-tunes the network: it needs y_train")
    if o.refresh and not (o.refresh_rounds >= 1 and o.refresh_wait >= 0 and o.refresh_tol > 0):
        raise ValueError(
            "refresh needs refresh_rounds >= 1, refresh_wait >= 0 s and refresh_tol > 0, got "
            f"{o.refresh_rounds}, {o.refresh_wait} s, {o.refresh_tol}"
        )
    if o.loop_range not in ("measured", "trained"):
        raise ValueError(f"loop_range must be 'measured' or 'trained', got {o.loop_range!r}")
    if o.chip_in_loop and not (math.isfinite(o.loop_settle) and o.loop_settle >= 0):
        raise ValueError(f"loop_settle must be a time >= 0 s, got {o.loop_settle}")
    if o.chip_in_loop and not program:
        raise ValueError("chip-in-the-loop programs the layers one by one: it needs program=True")
    return settle


def placement_report(placement: NetworkPlacement, slots: list[Any] | None = None) -> list[dict]:
    """Per layer: where it is (first row and column, counts, every row and column), its window
    (S), scale ``k`` and input scale (V per unit), and why it is there."""
    out = []
    for i, m in enumerate(placement.layers):
        row: dict[str, Any] = {
            "layer": i + 1,
            "row_start": m.row_start,
            "rows": m.n_rows,
            "col_start": m.col_start,
            "cols": m.n_cols,
            "row_index": [int(r) for r in m.rows],
            "col_index": [int(c) for c in m.cols],
            "g_min": m.g_min,
            "g_max": m.g_max,
            "k": m.k,
            "input_scale": m.input_scale,
        }
        if slots:
            row["reason"] = slots[i].reason
            row["weakest_cell"] = list(slots[i].weakest)
        else:
            row["reason"] = "default: layers packed from row 0 down, from column 0"
        out.append(row)
    return out


def _progressive(
    crossbar: Crossbar,
    trained: TrainedModel,
    placement: NetworkPlacement,
    x_train: np.ndarray,
    y_train: Any,
    o: DeployOptions,
    progress: ProgressFn | None,
    check: Callable[[], None],
    periphery: list[Periphery] | None = None,
) -> tuple[NetworkPlacement, np.ndarray, dict[str, float], list[float], dict[str, Any]]:
    """Chip-in-the-loop: program layer by layer, fine-tuning the later layers in software on the
    measured activations of the programmed ones (module docstring). Returns the final placement,
    the achieved map (S), the programming summary, the drift references and what was done.
    ``periphery`` (``levels``) is updated in place for the fine-tuned layers."""
    from .finetune import fit_readout

    x = np.asarray(x_train, dtype=float)
    y = np.asarray(y_train).astype(int)
    n = min(int(o.loop_points), len(x))
    idx = np.sort(np.random.default_rng(0).choice(len(x), n, replace=False))
    xs, ys = x[idx], y[idx]
    layers = [(wb[:, :-1].copy(), wb[:, -1].copy()) for wb in trained.augmented_weights()]
    if periphery is not None:  # the layers as placed (after the level fine-tuning)
        layers = [
            (m.weights * g[:, None], bias)
            for m, (g, bias) in zip(placement.layers, periphery, strict=True)
        ]
    n_layers = len(placement.layers)
    g_map = np.full(crossbar.shape, np.nan)
    reports: list[ProgramReport] = []
    refs0: list[float] = []
    info: dict[str, Any] = {"points": n, "steps": int(o.finetune_steps), "layers": []}
    h = xs
    for i in range(n_layers):
        if i > 0:
            placement, h, stats = _finetune_next(placement, layers, i, h, ys, trained, o, periphery)
            info["layers"].append({"layer": i + 1, **stats})
        mask = placement.layer_mask(i)
        targets = np.full(crossbar.shape, np.nan)
        targets[mask] = placement.full_map()[mask]
        achieved, report = _program_report(
            crossbar, targets, o, relabelled(progress, f"layer {i + 1}")
        )
        reports.append(report)
        g_map[mask] = achieved[mask]
        if o.drift_compensation:
            refs0.append(reference_read(crossbar, placement, i, o))
        check()
        if i < n_layers - 1 or o.readout_calibration:
            crossbar.wait(o.loop_settle)  # measure the layer as it relaxed, not as verified
            h, _ = layer_outputs(crossbar, placement, i, h, o, progress)
            if periphery is not None:
                h = h * periphery[i][0] + periphery[i][1]
        if i < n_layers - 1:
            h = _activation(h, trained.activation)
        elif o.readout_calibration:
            gain, offset, stats = fit_readout(h, ys)
            info["readout"] = {"gain": gain.tolist(), "offset": offset.tolist(), **stats}
    merged = ProgramReport(
        shape=crossbar.shape,
        targets=placement.full_map(),
        cells=[c for r in reports for c in r.cells],
    )
    return placement, g_map, _summary(merged), refs0, info


def _finetune_next(
    placement: NetworkPlacement,
    layers: list[tuple[np.ndarray, np.ndarray]],
    i: int,
    h: np.ndarray,
    ys: np.ndarray,
    trained: TrainedModel,
    o: DeployOptions,
    periphery: list[Periphery] | None,
) -> tuple[NetworkPlacement, np.ndarray, dict[str, Any]]:
    """Chip-in-the-loop, before layer ``i`` is programmed: fine-tune layers ``i…`` (in place in
    ``layers``) on the measured activations ``h`` and map layer ``i`` anew: (placement, the
    activations as its rows will see them, fine-tuning figures)."""
    from crossbar.mapping import map_weights

    from .finetune import LevelGrid, finetune_layers

    old = placement.layers[i]
    if o.loop_range == "trained":  # keep the layer's range; fine-tune on what it will see
        x_max = o.v_read_max / old.input_scale
        h = np.clip(h, -x_max, x_max)
    elif o.loop_range == "measured":
        x_max = float(max(np.max(np.abs(h)), 1e-12))
    else:
        raise ValueError(f"loop_range must be 'measured' or 'trained', got {o.loop_range!r}")
    lv = device_levels(o)
    grids = [LevelGrid(lv)] * (len(layers) - i) if lv is not None else None
    layers[i:], stats = finetune_layers(
        layers[i:], h, ys, trained.activation, steps=o.finetune_steps, lr=o.finetune_lr, grids=grids
    )
    w, b = layers[i]
    bias: np.ndarray | None = b
    if periphery is not None:
        w, gain = normalise_outputs(w)
        periphery[i], bias = (gain, np.asarray(b, dtype=float).copy()), None
    new = map_weights(
        w,
        bias,
        g_min=old.g_min,
        g_max=old.g_max,
        rows=old.row_start if old.contiguous else list(old.rows),
        cols=old.col_start if old.contiguous else list(old.cols),
        v_bias=old.v_bias,
        x_max=x_max,
        v_read_max=o.v_read_max,
    )
    if lv is not None:
        new = snap_to_levels(new, lv)
    return placement.with_layer(i, new), h, stats


def _program(
    crossbar: Crossbar, targets: np.ndarray, o: DeployOptions, progress: ProgressFn | None
) -> tuple[np.ndarray, dict[str, float]]:
    """Program-and-verify the network's cells: (achieved map S, summary of the run)."""
    achieved, report = _program_report(crossbar, targets, o, progress)
    return achieved, _summary(report)


def _program_report(
    crossbar: Crossbar, targets: np.ndarray, o: DeployOptions, progress: ProgressFn | None
) -> tuple[np.ndarray, ProgramReport]:
    """Program-and-verify the non-NaN cells of ``targets``, then (``refresh``) settle and
    reprogram what moved: (achieved map S, the report; a cell's pulses summed over rounds)."""
    lv = device_levels(o)
    tol = max(o.tol, o.level_tol) if lv is not None else o.tol
    report: ProgramReport = crossbar.program_map(
        targets,
        progress=relabelled(progress, "program"),
        tol=tol,
        max_pulses=o.max_pulses,
        algorithm=o.algorithm,
    )
    for r in range(o.refresh_rounds if o.refresh else 0):
        crossbar.wait(o.refresh_wait)
        g = crossbar.read_map(v_read=o.refresh_v_read, biasing="ground")
        moved = np.isfinite(targets) & ~(np.abs(g / targets - 1.0) <= o.refresh_tol)
        if not moved.any():
            break
        again = crossbar.program_map(
            np.where(moved, targets, np.nan),
            progress=relabelled(progress, f"refresh {r + 1}/{o.refresh_rounds}"),
            tol=tol,
            max_pulses=o.max_pulses,
            algorithm=o.algorithm,
        )
        cells = {(c.row, c.col): c for c in report.cells}
        for c in again.cells:
            c.pulses += cells[(c.row, c.col)].pulses
            cells[(c.row, c.col)] = c
        report = ProgramReport(shape=report.shape, targets=targets, cells=list(cells.values()))
    return report.final_map(), report


def _summary(report: ProgramReport) -> dict[str, float]:
    return {
        "cells": float(len(report.cells)),
        "fraction_converged": float(report.fraction_converged),
        "stuck": float(report.n_stuck),
        "mean_pulses": float(report.mean_pulses),
    }


def result_dict(result: DeploymentResult) -> dict[str, Any]:
    """Summary plus per-point view (for JSON output)."""
    return {**result.summary(), "per_point": result.per_point()}


__all__ = [
    "DeployOptions",
    "DeploymentResult",
    "V100_GOPS_PER_W",
    "crossbar_outputs",
    "energy_per_mvm",
    "fault_slots",
    "layer_outputs",
    "placement_report",
    "reference_read",
    "layer_ranges",
    "place_model",
    "result_dict",
    "run_on_crossbar",
    "software_outputs",
]
