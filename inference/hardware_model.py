"""The deployment noise model: a network evaluated as the crossbar would realise it.

:class:`DeploymentModel` takes a measured :class:`~crossbar.deployment_profile.DeploymentProfile`
(``xbar characterise``) and evaluates a trained network the way :func:`inference.deploy.
run_on_crossbar` realises it, for many independent trials at once:

1. **Mapping** — the real one: :func:`inference.deploy.place_model` (``crossbar.mapping.
   map_weights`` with the :class:`~inference.deploy.DeployOptions` window, input scaling and bias
   row), so the model and the deployment use the same targets G⁺ and G⁻, scale ``k`` and input
   scale ``s_x``.
2. **Programming** (per cell, per trial) — the target is clipped into the cell's measured window
   (when the array's own profile is used, ``stuck="profile"``) and, for a device with few levels
   (``quantise``), rounded to the nearest of ``levels`` log-spaced levels between the pulse
   response's G_min and G_max. Program-and-verify then either converges (probability
   ``converged_fraction``): ``G = T·(1 + ε)``, ε ~ N(0, σ_c²), σ_c = min(√(tol²/3 + σ_read²),
   median of ``sigma_rel_by_target``) — the verify accepts a read within ±tol, and that read
   carries the read noise — or it does not (``failed``), and then (decision, default
   ``"spread"``) G is log-normal around its target, with the σ_f that makes the mixture's
   spread equal the profile's σ_prog (:func:`failed_spread`); ``"below"`` puts it
   log-uniformly between the cell's floor and its target (left somewhere below where it was
   meant to be), ``"window"`` anywhere in its window. Evidence (moons 2-5-2, physics
   backend ``typical``, the array's own profile, 200 test points; model − bench, mean ± 95 %
   CI over bench seeds, or the mean alone): with the amplitude-ladder write-verify, 10 seeds,
   ``"below"`` gave ERM −1.5 ± 6.9 / BayesMulti +0.2 ± 6.7 (full characterisation) and +3.9 /
   +1.3 (quick), ``"window"`` −1.5 / −5.3 and ``"spread"`` +11.5 / +7.1 (quick) — the
   ladder's failed cells fall towards the HRS; with the adaptive
   write-verify (30 seeds) ``"below"`` gave ERM −1.8 ± 5.0 / BayesMulti −0.1 ± 3.6 (full
   characterisation) and −4.9 ± 4.7 / +3.8 ± 4.9 (quick), ``"spread"`` +3.2 ± 5.0 / +2.5 ± 3.3
   and +1.7 ± 4.2 / +7.3 ± 5.0, although its failed cells now scatter around their target.
   Once dissolution was modelled at the inference time (step 4, ``dissolved_by_settle``:
   the cells ``"below"`` had stood in for now dissolve on their own), adaptive write-verify,
   full characterisation, 20 seeds: ``"spread"`` ERM +0.2 ± 7.6 / BayesMulti +1.3 ± 4.0,
   ``"below"`` −5.2 ± 8.1 / −2.8 ± 4.4 — hence the default ``"spread"``.
   The profile does not measure where failed verifies end, so this is the model's least
   certain part; the fewer cells fail, the less it matters.

   **A discrete device** (the profile's pulse response found ``levels`` ≥ 2 and measured their
   ``level_conductances``; ``quantise="auto"``): the targets are rounded to those measured
   levels, whatever the programming statistics say (the characterisation aims at the levels,
   so most of its verifies converge; a deployment aims between them). A target within the
   verify's reach of its nearest level (ln-distance ≤ max(ln(1 + tol), the level's spread))
   converges as above; one further away cannot converge: the cell ends on the upper of the
   two neighbouring levels with probability ``p_upper`` (:data:`P_UPPER`), else on the lower
   (the top or bottom level outside them), at ``L·e^{σ_L z}`` — L the measured level, σ_L its
   spread over the cells in ln G (the window's floors for the lowest level, its tops for the
   others). Evidence (``paper``, bench seeds 0–2, 54 cells each, adaptive write-verify): the
   verify ends on either neighbour about evenly, and the later cells' pulses push the
   stranded ones up a level, so at the MVMs 72 % of the targets between the two lower levels
   and 76 % (+10 % dissolved) of those between the upper two sit on the upper one; the
   levels' spread there is 0.2–0.24 in ln G (the window's tops give 0.1). ``p_upper`` is a
   decision about the write-verify, not a measured figure: the profile does not target
   between levels.
3. **Stuck cells** — at random positions with the profile's ``stuck_fraction`` (each trial its
   own positions, values drawn from the measured stuck cells), at the profile's own stuck map
   (``stuck="profile"``: the array that was characterised), or at a given map
   (``stuck=<bool mask or cell list>``, e.g. to model fault-aware placement); a stuck cell holds
   its value whatever the target.
4. **Relaxation and drift** at each cell's age t at the MVMs: ``G(t) = G·(1 +
   r·min(1, t/t₁))·(max(t, t₀)/t₀)^−ν``, r ~ N(relaxation_rel, relaxation_std²) and ν ~
   N(ν_mean, ν_std²) per cell and trial (relaxation_std: the measured spread of the cells'
   relaxation; 0 in older profiles), t₁ = t₀ = the profile's first settle time; a cell
   dissolves to the floor (the pulse response's G_min) with the probability
   :meth:`DeploymentModel.dissolution` gives: the profile's ``dissolved_by_settle`` (the share
   dissolved by each settle time) interpolated in ln t, from the share already dissolved
   during the reads right after program-and-verify (``dissolved_right_after`` at
   ``seconds_right_after``), rising linearly from 0 before that (older profiles without the
   shares by settle time: ``dissolved_fraction·min(1, t/t_last)``, t_last the last settle
   time). Stuck cells do not move. The age (:meth:`DeploymentModel.cell_ages`): a deployment
   programs its cells one after another in row-major order and then runs the MVMs, so a cell
   is as old as the program-and-verify of the cells after it takes (the profile's measured
   ``seconds_per_cell`` each; the MVMs' own duration is left out); with an explicit
   ``t_inference``, or a profile without that figure, every cell is ``t_inference`` s old.
   Evidence (``typical``, bench seeds 0–4, 265 programmed cells, the bench's true conductances
   at the first MVM against the model's realisations): the 54 cells take 1.9 s to program, so
   the last ones are a fraction of a second old at the MVMs and their filaments (dissolution
   time ≈ 0.3 s) have not all dissolved yet; the converged cells that had not dissolved moved
   by 0.086 (σ of ln G) between their verify and the MVMs, against the verify's 0.03 — the
   spread of their relaxation.
5. **Every MVM** — row voltages ``V = [clip(x, ±x_max)·s_x, v_bias]`` (as
   :func:`crossbar.mapping.inputs_to_voltages` and the bias row), column currents ``I = V·G``
   (ideal, or an injected ``mvm`` function, e.g. a circuit solve with line resistance; inference
   does not import the simulation), read noise on each column current of each input vector
   (``read_noise="column"``: relative σ_read, as the simulated bench; ``"cell"``: independent per
   cell, relative to each cell's current), outputs ``y = k·(I⁺ − I⁻)/s_x``.
6. **Global drift compensation** (optional, as aihwkit's ``GlobalDriftCompensation``): each layer
   reads a reference vector (every row at v_read_max) right after programming and again at
   inference; its outputs are scaled by the ratio of the summed column currents.

Activations (ReLU/tanh) and the argmax stay digital. Everything is vectorised over trials in
torch (float64 when evaluating): no Python loop over trials or cells.

The same realisation drives hardware-aware training (:meth:`DeploymentModel.train_layer`): the
targets are built from the weights in torch (the algebra of ``map_weights``, with the layer's
input range taken from the batch), the sampled realisation is ``G = T·m + a`` with ``m`` and
``a`` drawn from the detached targets, so the gradient flows through the targets (a straight-
through estimate for quantisation and clipping).

:class:`~inference.noise.UsabilityModel` (METHODS §2) offers the same interface
(:class:`HardwareModel`): ``accuracy``, ``train_layer``, ``describe``.

Limits: the profile's figures come from a few cells (the quick protocol: 10), so σ_prog and the
converged fraction carry the sampling error of such a count (the share of dissolving filaments
too: on ``typical`` 0.06–0.24 over bench seeds from 17–20 cells, the largest single term of
the model − bench difference of one seed); the ``levels`` count of the pulse response is unreliable
on analog devices, hence ``quantise="auto"`` only rounds when the levels were measured
(``level_conductances``) or when the count is ≤ :data:`AUTO_LEVELS` and the programming
statistics agree (:data:`AUTO_CONVERGED`); where a discrete device's stranded verifies end
(``p_upper``) is a decision from the physics bench, not a measurement, and it depends on what
the cells held before programming, which the profile does not know: the model predicts a
deployment on the array as its characterisation left it (``paper``, BayesMulti, seeds 0–9:
model 72.7 %, bench 73.0 % right after the characterisation, 77.3 % after another network's
deployments, 79.9 % on the as-made array; docs/deployment-loop.md has the agreement table).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from calibration.grid_bo import torch_threads
from crossbar.deployment_profile import DeploymentProfile, load_deployment_profile
from crossbar.mapping import MappingError, NetworkPlacement

from .deploy import DeployOptions, place_model
from .noise import Draws, HardwareModel, UsabilityModel

__all__ = [
    "AUTO_LEVELS",
    "FAILED_MODES",
    "P_UPPER",
    "READ_NOISE_MODES",
    "STUCK_MODES",
    "DeploymentModel",
    "Draws",
    "HardwareModel",
    "MvmFn",
    "ProfileShapeError",
    "UsabilityModel",
    "check_profile_shape",
    "load_deployment_model",
]

#: ``quantise="auto"`` rounds to the profile's levels only when it counted this many or fewer
#: and program-and-verify converged on fewer than AUTO_CONVERGED of its cells (a device with
#: few real levels cannot reach targets between them, so its verify fails; the level count of
#: an analog device's pulse trains can be as low as 4 on the simulated ``typical`` array).
AUTO_LEVELS = 4
AUTO_CONVERGED = 0.5
#: A discrete device's cell whose target lies between two of its measured levels (further from
#: the nearer one than the verify's tolerance or that level's spread) cannot converge: it ends on
#: the upper of the two with this probability, else on the lower (modelling decision, see the
#: module docstring: the profile does not measure it).
P_UPPER = 0.8
#: Where the stuck cells are: random positions, the profile's own map, or none.
STUCK_MODES = ("random", "profile", "none")
#: Where a cell whose verify failed ends (see the module docstring).
FAILED_MODES = ("below", "spread", "window")
#: How read noise enters an MVM (see the module docstring).
READ_NOISE_MODES = ("column", "cell", "none")

#: ``mvm(g, v)``: conductances (T, rows, cols) S and row voltages (T or 1, N, rows) V → column
#: currents (T, N, cols) A. The default is the ideal product ``v @ g``.
MvmFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

Network = Any  # a TrainedModel or an MLP: augmented_weights() and activation


class ProfileShapeError(ValueError):
    """A deployment profile measured on an array of another size than the one it is used for."""


def check_profile_shape(profile: DeploymentProfile, shape: Sequence[int], what: str) -> None:
    """ProfileShapeError (one line) unless ``profile.shape`` equals ``shape`` (of ``what``)."""
    got = (int(shape[0]), int(shape[1]))
    if tuple(profile.shape) != got:
        raise ProfileShapeError(
            f"the deployment profile is for a {profile.shape[0]}x{profile.shape[1]} array but "
            f"{what} is {got[0]}x{got[1]}; characterise this array (xbar characterise)"
        )


def _act(h: torch.Tensor, name: str) -> torch.Tensor:
    return torch.relu(h) if name == "relu" else torch.tanh(h)


class DeploymentModel(HardwareModel):
    """A network realised on a crossbar described by a deployment profile (module docstring).

    Args:
        profile: the measured deployment profile.
        options: the deployment's options (window, read voltages); default DeployOptions().
        t_inference: s after programming at which the network is used (None: the profile's
            first settle time, i.e. right after programming).
        drift_compensation: scale each layer's outputs by a reference read's ratio.
        stuck: ``"random"``, ``"profile"``, ``"none"``, or the stuck cells themselves (a bool
            mask of the array's shape or a list of (row, col)).
        quantise: ``"auto"`` (the profile's measured levels; else its level count if ≤
            AUTO_LEVELS), an int ≥ 2 (levels, log-spaced), or None (analog).
        read_noise: ``"column"``, ``"cell"`` or ``"none"``.
        programming: False leaves out programming error (targets reached exactly).
        failed: where a cell whose verify failed ends: ``"spread"`` (log-normal around its
            target, σ_f matched to the profile's σ_prog), ``"below"`` (log-uniform between its
            floor and its target) or ``"window"`` (log-uniform over its window).
        mvm: injected array product (see :data:`MvmFn`), e.g. with line resistance.
        source: where the profile came from (shown by :meth:`describe`).
        p_upper: a discrete device's cell aiming between two levels ends on the upper one
            with this probability (module docstring).
    """

    def __init__(
        self,
        profile: DeploymentProfile,
        options: DeployOptions | None = None,
        *,
        t_inference: float | None = None,
        drift_compensation: bool = False,
        stuck: str | np.ndarray | Sequence[tuple[int, int]] = "random",
        quantise: str | int | None = "auto",
        read_noise: str = "column",
        programming: bool = True,
        failed: str = "spread",
        mvm: MvmFn | None = None,
        source: str | None = None,
        p_upper: float = P_UPPER,
    ) -> None:
        self.profile = profile
        self.options = options or DeployOptions()
        self.shape = (int(profile.shape[0]), int(profile.shape[1]))
        prog = profile.programming
        self.t_inference = float(prog.settle_times[0] if t_inference is None else t_inference)
        #: None (the default t_inference) and a profile that timed its program-and-verify: each
        #: cell's age at the MVMs is the time the cells programmed after it take (module
        #: docstring, step 4); else every cell is t_inference s old
        self.seconds_per_cell = float(prog.seconds_per_cell)
        self.ages_by_order = t_inference is None and self.seconds_per_cell > 0
        if not (math.isfinite(self.t_inference) and self.t_inference >= 0):
            raise ValueError(f"t_inference must be a time >= 0 s, got {t_inference}")
        self.drift_compensation = bool(drift_compensation)
        if read_noise not in READ_NOISE_MODES:
            raise ValueError(f"read_noise must be one of {READ_NOISE_MODES}, got {read_noise!r}")
        self.read_noise = read_noise
        self.programming = bool(programming)
        if failed not in FAILED_MODES:
            raise ValueError(f"failed must be one of {FAILED_MODES}, got {failed!r}")
        self.failed = failed
        if not 0.0 <= p_upper <= 1.0:
            raise ValueError(f"p_upper must be a probability in [0, 1], got {p_upper}")
        self.p_upper = float(p_upper)
        self.mvm = mvm
        self.source = source
        self._init_device(profile)
        self._init_stuck(stuck)
        self.levels = self._levels(quantise)
        self.discrete = quantise == "auto" and self.levels is not None and self._measured_levels()

    # -- what the model takes from the profile -------------------------------------------------
    def _init_device(self, p: DeploymentProfile) -> None:
        prog, pr = p.programming, p.pulse_response
        self.read_sigma = float(p.read_noise.sigma_rel)
        theory = math.sqrt(prog.tol**2 / 3.0 + self.read_sigma**2)
        by_target = [s for s in prog.sigma_rel_by_target if math.isfinite(s)]
        measured = float(np.median(by_target)) if by_target else float(prog.sigma_rel)
        self.sigma_converged = min(theory, measured)
        self.converged_fraction = float(prog.converged_fraction)
        self.sigma_failed = failed_spread(
            float(prog.sigma_rel), self.sigma_converged, self.converged_fraction,
            math.log(max(float(pr.dynamic_range), 1.0 + 1e-9)),
        )  # fmt: skip
        self.relaxation = float(prog.relaxation_rel)
        self.relaxation_std = float(prog.relaxation_std)
        self.t0 = float(prog.settle_times[0])
        self.t_last = float(prog.settle_times[-1])
        self.nu_mean, self.nu_std = float(prog.drift_nu_mean), float(prog.drift_nu_std)
        self.dissolved = float(prog.dissolved_fraction)
        self.g_floor = float(max(pr.g_min, 1e-15))
        self.g_ceiling = float(max(pr.g_max, self.g_floor * (1 + 1e-9)))
        self.window_min = np.maximum(np.asarray(p.window.g_min, dtype=float), 1e-15)
        self.window_max = np.maximum(np.asarray(p.window.g_max, dtype=float), self.window_min)
        self.dissolved_by_settle = [float(f) for f in prog.dissolved_by_settle]
        stuck_cells = [tuple(c) for c in p.window.stuck]
        free = np.ones(self.shape, dtype=bool)
        free[tuple(np.asarray(stuck_cells, dtype=int).reshape(-1, 2).T)] = False
        # the spread of a level from cell to cell (ln G): the HRS's from the window's floors,
        # the filament's levels from its tops (every free cell after a strong SET)
        self.level_sigma = (_ln_spread(self.window_min[free]), _ln_spread(self.window_max[free]))
        self.stuck_values_profile = np.array(
            [math.sqrt(self.window_min[r, c] * self.window_max[r, c]) for r, c in stuck_cells]
        )

    def _init_stuck(self, stuck: Any) -> None:
        rows, cols = self.shape
        self.stuck_mode = "map"
        if isinstance(stuck, str):
            if stuck not in STUCK_MODES:
                raise ValueError(f"stuck must be one of {STUCK_MODES} or a map, got {stuck!r}")
            self.stuck_mode = stuck
            mask = np.zeros(self.shape, dtype=bool)
            if stuck == "profile":
                for r, c in self.profile.window.stuck:
                    mask[r, c] = True
        else:
            arr = np.asarray(stuck)
            if arr.dtype == bool:
                if arr.shape != self.shape:
                    raise ValueError(f"stuck map must be {self.shape}, got {arr.shape}")
                mask = arr.copy()
            else:
                mask = np.zeros(self.shape, dtype=bool)
                for r, c in np.asarray(arr, dtype=int).reshape(-1, 2):
                    if not (0 <= r < rows and 0 <= c < cols):
                        raise ValueError(
                            f"stuck cell ({r}, {c}) is outside the {rows}x{cols} array"
                        )
                    mask[r, c] = True
        self.stuck_mask = mask
        # a stuck cell holds the value measured on it (the geometric middle of its window)
        self.stuck_value_map = np.sqrt(self.window_min * self.window_max)
        self.stuck_fraction = float(self.profile.window.stuck_fraction)

    def _measured_levels(self) -> bool:
        pr = self.profile.pulse_response
        return pr.levels >= 2 and len(pr.level_conductances) == pr.levels

    def _levels(self, quantise: str | int | None) -> np.ndarray | None:
        if quantise is None:
            return None
        if quantise == "auto" and self._measured_levels():  # a filament of measured levels
            return np.sort(np.maximum(self.profile.pulse_response.level_conductances, 1e-15))
        n = int(self.profile.pulse_response.levels) if quantise == "auto" else quantise
        if quantise == "auto" and (
            n == 0 or n > AUTO_LEVELS or self.converged_fraction >= AUTO_CONVERGED
        ):  # an analog device (0: the characterisation found no discrete levels), or a count
            return None  # the programming statistics contradict
        if not isinstance(n, (int, np.integer)) or n < 2:
            if quantise == "auto":  # one level: the device does not switch at all
                return np.array([math.sqrt(self.g_floor * self.g_ceiling)])
            raise ValueError(f"quantise must be 'auto', None or an int >= 2, got {quantise!r}")
        return np.geomspace(self.g_floor, self.g_ceiling, int(n))

    # -- cells ----------------------------------------------------------------------------------
    def program(
        self,
        targets: torch.Tensor,
        draws: Draws,
        cells: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Program-and-verify of target blocks (T, R, C) S (values only; no gradient needed).

        ``cells``: the array rows and columns of the block (None: positions unknown, e.g. in
        training; per-cell windows and fixed stuck maps then do not apply). Returns ``(m, a,
        fixed)``: the realised conductance is ``targets·m + a``; ``fixed`` marks stuck cells.
        """
        t = targets.detach()
        shape = t.shape
        dt = t.dtype
        if cells is not None and self.stuck_mode in ("profile", "map"):  # this very array
            r_idx, c_idx = np.ix_(np.asarray(cells[0]), np.asarray(cells[1]))
            lo = torch.from_numpy(self.window_min[r_idx, c_idx]).to(dt).expand(shape)
            hi = torch.from_numpy(self.window_max[r_idx, c_idx]).to(dt).expand(shape)
            aim = torch.minimum(torch.maximum(t, lo), hi)
        else:
            lo = torch.full_like(t, self.g_floor)
            hi = torch.full_like(t, self.g_ceiling)
            aim = t
        aim0 = aim
        if self.levels is not None:
            aim = self._quantised(aim)
        if self.programming:
            eps = self.sigma_converged * draws.randn(shape[1:])
            conv = draws.rand(shape[1:]) < self.converged_fraction
            m = torch.where(conv, aim / t * torch.clamp(1.0 + eps, min=0.0), torch.zeros_like(t))
            missed = self._missed(aim, lo, hi, draws)
            if self.failed == "spread":  # near the target: keep the gradient path through it
                m = torch.where(conv, m, missed / t)
                a = torch.zeros_like(t)
            else:
                a = torch.where(conv, torch.zeros_like(t), missed)
            if self.discrete:  # between two levels: the verify cannot converge
                off, landed = self._landed(aim0, draws)
                m, a = torch.where(off, landed / t, m), torch.where(off, torch.zeros_like(a), a)
        else:
            m, a = aim / t, torch.zeros_like(t)
        fixed, value = self._stuck(shape, draws, cells, dt)
        m = torch.where(fixed, torch.zeros_like(m), m)
        a = torch.where(fixed, value, a)
        return m, a, fixed

    def _missed(
        self, aim: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, draws: Draws
    ) -> torch.Tensor:
        """Where a cell whose verify failed ends (``failed``, module docstring)."""
        if self.failed == "spread":
            z = draws.randn(aim.shape[1:])
            return torch.minimum(torch.maximum(aim * torch.exp(self.sigma_failed * z), lo), hi)
        u = draws.rand(aim.shape[1:])
        floor = torch.log(lo)
        top = torch.log(hi) if self.failed == "window" else torch.log(aim)
        return torch.exp(floor + u * (top - floor))

    def _landed(self, g: torch.Tensor, draws: Draws) -> tuple[torch.Tensor, torch.Tensor]:
        """(off, G) of a discrete device's cells aiming at ``g`` S (T, R, C): ``off`` where no
        level is within the verify's reach (tolerance or the level's spread, in ln G) — those
        end on the upper neighbouring level with probability ``p_upper``, else on the lower,
        at a log-normal draw around its median (the level's measured spread)."""
        lv = torch.from_numpy(self.levels).to(g.dtype)
        sig = torch.full_like(lv, self.level_sigma[1])
        sig[0] = self.level_sigma[0]
        dist = (torch.log(g)[..., None] - torch.log(lv)).abs()
        near = torch.argmin(dist, dim=-1)
        reach = torch.clamp(sig[near], min=math.log1p(self.options.tol))
        off = torch.gather(dist, -1, near[..., None])[..., 0] > reach
        idx = torch.searchsorted(lv, g.contiguous())  # the levels below g: idx - 1 and down
        upper = torch.clamp(idx, max=lv.numel() - 1)
        lower = torch.clamp(idx - 1, min=0, max=lv.numel() - 1)
        pick = torch.where(draws.rand(g.shape[1:]) < self.p_upper, upper, lower)
        return off, lv[pick] * torch.exp(sig[pick] * draws.randn(g.shape[1:]))

    def _quantised(self, g: torch.Tensor) -> torch.Tensor:
        lv = torch.from_numpy(self.levels).to(g.dtype)
        idx = torch.argmin((torch.log(g)[..., None] - torch.log(lv)).abs(), dim=-1)
        return lv[idx]

    def _stuck(
        self,
        shape: torch.Size,
        draws: Draws,
        cells: tuple[np.ndarray, np.ndarray] | None,
        dt: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(stuck mask, value) of the block's cells, (T, R, C)."""
        if self.stuck_mode == "none":
            return torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=dt)
        if self.stuck_mode == "random" or cells is None:
            pool = self.stuck_values_profile
            if self.stuck_fraction <= 0 or pool.size == 0:
                return torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=dt)
            fixed = draws.rand(shape[1:]) < self.stuck_fraction
            pick = torch.clamp((draws.rand(shape[1:]) * pool.size).long(), max=pool.size - 1)
            return fixed, torch.from_numpy(pool).to(dt)[pick]
        r_idx, c_idx = np.ix_(np.asarray(cells[0]), np.asarray(cells[1]))
        fixed = torch.from_numpy(self.stuck_mask[r_idx, c_idx]).expand(shape)
        value = torch.from_numpy(self.stuck_value_map[r_idx, c_idx]).to(dt).expand(shape)
        return fixed, value

    def age(
        self,
        m: torch.Tensor,
        a: torch.Tensor,
        fixed: torch.Tensor,
        draws: Draws,
        t: float | torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(m, a)`` of the cells ``t`` s after programming (default ``t_inference``; a
        tensor of the block's shape: each cell's own age): relaxation, power-law drift and
        dissolution (module docstring); stuck cells stay."""
        shape = m.shape
        tt = torch.as_tensor(self.t_inference if t is None else t, dtype=m.dtype)
        tt = torch.clamp(tt, min=0.0).expand(shape[1:])
        if self.t0 > 0:
            rel = torch.full(shape, self.relaxation, dtype=m.dtype)
            if self.relaxation_std > 0:  # each cell its own (the measured spread)
                rel = rel + self.relaxation_std * draws.randn(shape[1:])
            relax = torch.clamp(1.0 + rel * torch.clamp(tt / self.t0, max=1.0), min=0.0)
            log_ratio = torch.log(torch.clamp(tt, min=self.t0) / self.t0)
        else:
            relax, log_ratio = torch.ones(shape, dtype=m.dtype), torch.zeros_like(tt)
        if self.nu_std > 0 or self.nu_mean != 0:
            nu = self.nu_mean + self.nu_std * draws.randn(shape[1:])
            factor = relax * torch.exp(-nu * log_ratio)
        else:
            factor = relax
        factor = torch.where(fixed, torch.ones_like(m), factor)
        m, a = m * factor, a * factor
        p = self._dissolution(tt)
        if bool((p > 0).any()):
            gone = (draws.rand(shape[1:]) < p) & ~fixed
            m = torch.where(gone, torch.zeros_like(m), m)
            a = torch.where(gone, torch.full_like(a, self.g_floor), a)
        return m, a

    def _dissolution(self, t: torch.Tensor) -> torch.Tensor:
        """:meth:`dissolution` of every cell's age ``t`` (s, a tensor)."""
        flat = t.reshape(-1).tolist()
        uniq = {v: self.dissolution(v) for v in set(flat)}
        return torch.tensor([uniq[v] for v in flat], dtype=t.dtype).reshape(t.shape)

    def cell_ages(self, placement: NetworkPlacement) -> np.ndarray:
        """Each cell's age (rows, cols) s at the MVMs of a deployment of ``placement``: the
        network's cells are programmed one after another in row-major order (as
        :meth:`Crossbar.program_map`), each taking the profile's measured
        ``seconds_per_cell``, and the MVMs follow the last one; unused cells 0. Without that
        figure (older profiles) or with an explicit ``t_inference``: ``t_inference`` everywhere."""
        if not self.ages_by_order:
            return np.full(self.shape, self.t_inference)
        used = np.asarray(placement.used_mask(), dtype=bool).ravel()
        ages = np.zeros(used.size)
        n = int(used.sum())
        ages[used] = (n - 1 - np.arange(n)) * self.seconds_per_cell
        return ages.reshape(self.shape)

    def dissolution(self, t: float) -> float:
        """Share of the programmed cells dissolved ``t`` s after programming: the profile's
        share by each settle time, interpolated in ln t, from its share right after programming
        (``dissolved_right_after`` at ``seconds_right_after``; a linear rise before the first
        of these times; older profiles without the per-settle shares: ``dissolved_fraction``,
        linear up to the last settle time)."""
        by = self.dissolved_by_settle
        prog = self.profile.programming
        times = prog.settle_times
        if not by or len(by) != len(times):
            return self.dissolved * min(1.0, t / self.t_last) if self.t_last > 0 else 0.0
        t_early = float(prog.seconds_right_after)
        if 0 < t_early < times[0]:  # measured right after programming: ln t from there
            early = min(float(prog.dissolved_right_after), by[0])
            if t <= t_early:
                return early * t / t_early
            if t <= times[0]:
                return float(np.interp(math.log(t), np.log([t_early, times[0]]), [early, by[0]]))
        if t <= times[0]:
            return by[0] * t / times[0]
        return float(np.interp(math.log(t), np.log(times), by))

    # -- one block's MVMs -----------------------------------------------------------------------
    def _currents(
        self,
        g: torch.Tensor,
        v: torch.Tensor,
        draws: Draws,
        cells: tuple[np.ndarray, np.ndarray] | None,
    ) -> torch.Tensor:
        """Column currents (T, N, C) A of a block with read noise."""
        if self.mvm is not None and cells is not None:
            i = self._injected(g, v, cells)
        else:
            i = torch.matmul(v, g)
        if self.read_noise == "column":
            i = i * (1.0 + self.read_sigma * draws.randn(i.shape[1:]))
        elif self.read_noise == "cell":
            spread = torch.sqrt(torch.matmul(v * v, g * g))
            i = i + self.read_sigma * spread * draws.randn(i.shape[1:])
        return i

    def _injected(
        self, g: torch.Tensor, v: torch.Tensor, cells: tuple[np.ndarray, np.ndarray]
    ) -> torch.Tensor:
        """The block's column currents from the injected full-array MVM (other cells parked at
        the floor, other rows at 0 V)."""
        rows, cols = (np.asarray(c) for c in cells)
        n = g.shape[0]
        full = np.full((n, *self.shape), self.g_floor)
        full[:, rows[:, None], cols[None, :]] = g.detach().cpu().numpy()
        vf = np.zeros((v.shape[0], v.shape[1], self.shape[0]))
        vf[:, :, rows] = v.detach().cpu().numpy()
        out = np.asarray(self.mvm(full, vf), dtype=float)
        return torch.from_numpy(out[:, :, cols]).to(g.dtype)

    def block_outputs(
        self,
        g0: torch.Tensor,
        gt: torch.Tensor,
        v: torch.Tensor,
        k: torch.Tensor | float,
        s_x: torch.Tensor | float,
        draws: Draws,
        cells: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> torch.Tensor:
        """Layer outputs ``y = k·(I⁺ − I⁻)/s_x`` (T, N, out) of a block realised as ``gt``
        (``g0``: right after programming, for the drift compensation's reference read)."""
        i = self._currents(gt, v, draws, cells)
        k = torch.as_tensor(k, dtype=gt.dtype).reshape(-1, 1, 1)
        s_x = torch.as_tensor(s_x, dtype=gt.dtype).reshape(-1, 1, 1)
        y = k * (i[..., 0::2] - i[..., 1::2]) / s_x
        if self.drift_compensation:
            y = y * self._compensation(g0, gt, draws, cells)
        return y

    def _compensation(
        self,
        g0: torch.Tensor,
        gt: torch.Tensor,
        draws: Draws,
        cells: tuple[np.ndarray, np.ndarray] | None,
    ) -> torch.Tensor:
        """α = Σ I_ref(0) / Σ I_ref(t) per trial (T, 1, 1), reference: every row at
        v_read_max, read with read noise both times (detached)."""
        v = torch.full((1, 1, g0.shape[1]), self.options.v_read_max, dtype=g0.dtype)
        ref0 = self._currents(g0.detach(), v, draws, cells).sum(dim=(1, 2))
        ref_t = self._currents(gt.detach(), v, draws, cells).sum(dim=(1, 2))
        return (ref0 / torch.clamp(ref_t, min=1e-30)).reshape(-1, 1, 1)

    def _realise(
        self,
        targets: torch.Tensor,
        draws: Draws,
        cells: tuple[np.ndarray, np.ndarray] | None,
        ages: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G right after programming, G at the MVMs) of target blocks (T, R, C); ``ages``
        (R, C) s: each cell's age then (default: t_inference)."""
        m, a, fixed = self.program(targets, draws, cells)
        mt, at = self.age(m, a, fixed, draws, ages)
        return targets * m + a, targets * mt + at

    # -- a whole network ------------------------------------------------------------------------
    def placement(self, net: Network, x_calib: np.ndarray) -> NetworkPlacement:
        """The deployment's placement of ``net`` on the profile's array (MappingError if the
        network does not fit)."""
        return place_model(net, x_calib, self.shape, self.options)

    def logits(
        self,
        net: Network,
        x: np.ndarray,
        *,
        x_calib: np.ndarray | None = None,
        n_trials: int = 10,
        seed: int = 0,
        placement: NetworkPlacement | None = None,
    ) -> np.ndarray:
        """Logits (n_trials, N, classes) of ``net`` on inputs ``x`` (transformed features).

        ``x_calib``: the inputs the deployment calibrates each layer's input range on (the
        training set, as :func:`run_on_crossbar`'s ``x_train``); or give the ``placement``.
        """
        if int(n_trials) < 1:
            raise ValueError(f"n_trials must be >= 1, got {n_trials}")
        if placement is None:
            if x_calib is None:
                raise ValueError("give x_calib (the training inputs) or a placement")
            placement = self.placement(net, x_calib)
        elif tuple(placement.shape) != self.shape:
            raise ProfileShapeError(
                f"the deployment profile is for a {self.shape[0]}x{self.shape[1]} array but the "
                f"placement is for {placement.shape[0]}x{placement.shape[1]}"
            )
        n = int(n_trials)
        gen = torch.Generator().manual_seed(int(seed))
        draws = Draws(gen, n, torch.float64)
        ages = self.cell_ages(placement)
        with torch_threads(1), torch.no_grad():
            h = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None]
            last = len(placement.layers) - 1
            for i, lm in enumerate(placement.layers):
                cells = (np.asarray(lm.rows), np.asarray(lm.cols))
                targets = torch.from_numpy(lm.targets).expand(n, *lm.targets.shape)
                block_ages = torch.from_numpy(ages[np.ix_(cells[0], cells[1])])
                g0, gt = self._realise(targets, draws, cells, block_ages)
                x_max = self.options.v_read_max / lm.input_scale
                v = _row_voltages(h, x_max, lm.input_scale, lm.v_bias if lm.has_bias else None)
                h = self.block_outputs(g0, gt, v, lm.k, lm.input_scale, draws, cells)
                if i < last:
                    h = _act(h, net.activation)
        return h.numpy()

    # -- training -------------------------------------------------------------------------------
    def train_layer(
        self, w: torch.Tensor, b: torch.Tensor, h: torch.Tensor, draws: Draws
    ) -> torch.Tensor:
        """Outputs (M, N, out) of M models' layer (w (M, out, in), b (M, out)) on inputs h
        ((N, in) or (M, N, in)) realised on the device: targets from the weights as
        ``map_weights`` builds them (input range from the batch), a sampled realisation per
        model, read noise, differentiable in w and b."""
        targets, k, s_x, x_max = torch_targets(
            w, b, h, g_min=self.options.g_min, g_max=self.options.g_max,
            v_bias=self.options.v_bias, v_read_max=self.options.v_read_max,
        )  # fmt: skip
        g0, gt = self._realise(targets, draws, None)
        v = _row_voltages(h, x_max, s_x, self.options.v_bias)
        return self.block_outputs(g0, gt, v, k, s_x, draws, None)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the kind, the profile's key figures and the conditions."""
        p = self.profile
        return {
            "kind": "deployment",
            "source": self.source,
            "bench": p.bench,
            "shape": list(self.shape),
            "created": p.created,
            "read_sigma": self.read_sigma,
            "sigma_converged": self.sigma_converged,
            "converged_fraction": self.converged_fraction,
            "stuck_fraction": self.stuck_fraction,
            "stuck": self.stuck_mode,
            "levels": None if self.levels is None else int(self.levels.size),
            "drift_nu_mean": self.nu_mean,
            "t_inference": self.t_inference,
            "ages": "programming order" if self.ages_by_order else "t_inference",
            "seconds_per_cell": self.seconds_per_cell,
            "drift_compensation": self.drift_compensation,
            "read_noise": self.read_noise,
            "failed": self.failed,
            "p_upper": self.p_upper if self.discrete else None,
            "sigma_failed": self.sigma_failed,
            "window": [self.options.g_min, self.options.g_max],
            "line_resistance_mvm": self.mvm is not None,
        }

    def __repr__(self) -> str:
        d = self.describe()
        return (
            f"DeploymentModel({d['bench']} {d['shape'][0]}x{d['shape'][1]}, read σ "
            f"{d['read_sigma']:.3g}, converged {d['converged_fraction']:.2f}, stuck "
            f"{d['stuck_fraction']:.2f} ({d['stuck']}), t={d['t_inference']:g} s)"
        )


def failed_spread(sigma: float, sigma_c: float, p_c: float, cap: float) -> float:
    """σ_f of ln(G/T) of the cells whose verify failed such that the mixture of converged cells
    (relative σ ``sigma_c``, fraction ``p_c``) and failed ones (log-normal σ_f, median at the
    target) has the measured relative σ ``sigma``: E[(e^{σ_f Z} − 1)²] = (σ² − p_c·σ_c²)/(1 −
    p_c); at most ``cap`` (ln of the dynamic range), 0 when every cell converged."""
    if p_c >= 1.0:
        return 0.0
    var_f = max(0.0, (sigma**2 - p_c * sigma_c**2) / (1.0 - p_c))

    def rel_var(s: float) -> float:
        return math.exp(2 * s * s) - 2 * math.exp(s * s / 2) + 1

    lo, hi = 0.0, max(cap, 1e-6)
    if rel_var(hi) <= var_f:
        return hi
    for _ in range(60):  # bisection: rel_var grows with s
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rel_var(mid) < var_f else (lo, mid)
    return 0.5 * (lo + hi)


def _ln_spread(g: np.ndarray) -> float:
    """Standard deviation of ln G over cells (0 for fewer than two)."""
    g = np.asarray(g, dtype=float)
    g = g[g > 0]
    return float(np.std(np.log(g), ddof=1)) if g.size > 1 else 0.0


def _row_voltages(
    h: torch.Tensor,
    x_max: torch.Tensor | float,
    s_x: torch.Tensor | float,
    v_bias: float | None,
) -> torch.Tensor:
    """Row voltages (·, N, in [+1]) V: inputs clipped to ±x_max times s_x, then the bias row."""
    h3 = h if h.dim() == 3 else h[None]
    xm = torch.as_tensor(x_max, dtype=h3.dtype).reshape(-1, 1, 1)
    s = torch.as_tensor(s_x, dtype=h3.dtype).reshape(-1, 1, 1)
    v = torch.clamp(h3, min=-xm, max=xm) * s  # (clamp keeps the full gradient at ±x_max)
    if v_bias is None:
        return v
    bias = torch.full((*v.shape[:-1], 1), float(v_bias), dtype=v.dtype)
    return torch.cat([v, bias], dim=-1)


def torch_targets(
    w: torch.Tensor,
    b: torch.Tensor,
    h: torch.Tensor,
    *,
    g_min: float,
    g_max: float,
    v_bias: float,
    v_read_max: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``map_weights``' targets in torch for M models at once, differentiable in w and b.

    w (M, out, in), b (M, out), h the layer's inputs ((N, in) or (M, N, in)): x_max = max|h| per
    model (detached), s_x = v_read_max/x_max, the bias row b·s_x/v_bias, k = max|W_eq|/(g_max −
    g_min) (detached). Returns targets (M, in+1, 2·out) with G⁺ on even and G⁻ on odd columns,
    k (M,), s_x (M,), x_max (M,).
    """
    m = w.shape[0]
    hd = h.detach().abs()
    x_max = hd.amax(dim=(-2, -1)) if hd.dim() == 3 else hd.amax().expand(m)
    x_max = torch.clamp(x_max, min=1e-12).to(w.dtype)
    s_x = v_read_max / x_max
    weq = torch.cat([w.transpose(1, 2), (b * (s_x / v_bias)[:, None])[:, None, :]], dim=1)
    w_abs = weq.detach().abs().amax(dim=(1, 2))
    k = torch.where(w_abs > 0, w_abs, torch.ones_like(w_abs)) / (g_max - g_min)
    dg = weq / k[:, None, None]
    # relu(±dg) as (|dg| ± dg)/2: the same values, but d(G⁺ − G⁻)/d dg = 1 at dg = 0 too (relu's
    # zero slope there would never let a zero-initialised bias move)
    g_plus = g_min + 0.5 * (dg.abs() + dg)
    g_minus = g_min + 0.5 * (dg.abs() - dg)
    targets = torch.stack([g_plus, g_minus], dim=-1).reshape(m, weq.shape[1], -1)
    return targets, k, s_x, x_max


def load_deployment_model(
    path: str | Path, options: DeployOptions | None = None, **conditions: Any
) -> DeploymentModel:
    """A :class:`DeploymentModel` of a deployment-profile JSON file (DeploymentProfileError if
    the file is not one); ``conditions`` are the model's keywords."""
    profile = load_deployment_profile(path)
    return DeploymentModel(profile, options, source=str(path), **conditions)


def fits(net: Network, x_calib: np.ndarray, model: DeploymentModel) -> str | None:
    """None if ``net`` fits the model's array, else the one-line reason."""
    try:
        model.placement(net, x_calib)
    except MappingError as exc:
        return str(exc)
    return None
