"""The deployment noise model predicts what the physics backend's deployment gives.

For each bench seed: open the physics bench, characterise it (the deployment profile of that
very array), deploy each network with :func:`inference.deploy.run_on_crossbar` (program-and-
verify, MVMs on the simulated array) and evaluate the same network with
``DeploymentModel(profile, stuck="profile")`` (200 test points, 200 trials). The claim: the mean
hardware accuracy over the seeds agrees within 3 points. The table (mean with 95 % CI over
seeds, and of the paired difference) is printed (``pytest -s``).

The quick suite runs a small grid (``optimized``, 1 seed, ERM); the full check (``typical`` —
and ``paper`` when the simulation has that preset —, 10 seeds, ERM and BayesMulti) is slow.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_inference_hardware_model as hardware_tests
from scipy import stats

from bench.hardware_model import physics_bench
from crossbar.characterise import CharacterisationPlan, characterise
from crossbar.core import Crossbar
from inference.deploy import run_on_crossbar
from inference.hardware_model import DeploymentModel
from inference.models import MOONS_SIZES
from inference.training import train_bayesmulti
from sim_backends.profiles import PROFILES

N_POINTS = 200
make_profile = hardware_tests.make_profile
moons_erm = hardware_tests.moons_erm  # the two-moons data and its ERM network (a fixture)


def agreement(preset: str, seeds, nets: dict, plan: CharacterisationPlan, moons) -> dict:
    """Per network: (bench accuracies, model accuracies) over the seeds."""
    x, y = moons.x_test[:N_POINTS], moons.y_test[:N_POINTS]
    out = {name: ([], []) for name in nets}
    for seed in seeds:
        with Crossbar(physics_bench(preset, seed)) as xb:
            profile = characterise(xb, plan)
            for name, net in nets.items():
                r = run_on_crossbar(xb, net, x, y, x_train=moons.x_train)
                model = DeploymentModel(profile, stuck="profile")
                acc = model.accuracy(net, x, y, x_calib=moons.x_train, n_trials=200, seed=seed)
                out[name][0].append(r.hardware_accuracy)
                out[name][1].append(float(acc.mean()))
    return out


def _ci(v) -> tuple[float, float]:
    v = 100 * np.asarray(v, dtype=float)
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0
    return float(v.mean()), float(half)


def report(preset: str, out: dict) -> str:
    lines = [f"{preset}: hardware accuracy, mean ± 95 % CI over {len(next(iter(out.values()))[0])}"
             " bench seeds (points)"]  # fmt: skip
    for name, (bench, model) in out.items():
        b, m = _ci(bench), _ci(model)
        d = _ci(np.subtract(model, bench))
        lines.append(
            f"  {name:11s} bench {b[0]:5.1f} ± {b[1]:4.1f}   model {m[0]:5.1f} ± {m[1]:4.1f}   "
            f"model − bench {d[0]:+5.1f} ± {d[1]:4.1f}"
        )
    return "\n".join(lines)


def test_model_agrees_with_the_optimized_physics_bench(moons_erm) -> None:
    moons, erm = moons_erm
    out = agreement("optimized", range(1), {"ERM": erm}, CharacterisationPlan.quick(), moons)
    print(report("optimized", out))
    bench, model = out["ERM"]
    assert abs(model[0] - bench[0]) <= 0.02


#: Issue 15's acceptance (agreement within 3 points) holds on ``paper`` but not yet on
#: ``typical``. Measured over these 10 bench seeds (model − bench, mean ± 95 % CI, points) with
#: the model quantising to the measured levels, stranded verifies ending on a neighbouring
#: level, each cell aged as the deployment's programming order and the measured time per
#: program-and-verify make it, dissolution from the share measured right after programming,
#: the measured spread of the relaxation, and the width-controlled write-verify:
#: paper ERM +1.1 ± 9.1, BayesMulti +0.1 ± 10.8; typical ERM −4.1 ± 8.3, BayesMulti −0.8 ± 5.6.
#: (Every cell at t_inference = 1 s, dissolution rising linearly to 1 s, the mean relaxation:
#: paper +0.3 / +0.2, typical −3.5 / −1.4; the write-verify of the session before that: paper
#: +30.9 / +18.4, typical −0.7 / +4.0.) What is left on ``typical`` (seeds 0–9, the bench's
#: true conductances at the first MVM put in place of the model's draws, ERM): the cells the
#: bench dissolved instead of the model's dissolution +3.5, the converged cells +1.0, the
#: stranded verifies −0.6, stuck cells 0, the MVMs themselves (read noise, line resistance)
#: −0.2. The model dissolves 12.4 % of the cells, the bench 12.6 %, but the bench's dissolve
#: mostly where the network parks cells at g_min (15 % of those, 8.5–13.6 % of the cells
#: programmed higher, 5 % above 15 µS), where a lost filament hardly moves a weight: the
#: profile does not measure dissolution by target. (Tried on branch ``wt-diss``, not merged:
#: a log-odds slope per ln G fitted by the characterisation came out positive on ``typical``
#: — seeds 0–4: +0.34, +0.16, +0.79, −0.53, +0.88; 11 % of the cells programmed to 0.2–2.9 µS
#: dissolve, 17–22 % of those at 3–10 µS — and weighting each cell by it missed by more: ERM
#: −9.4 ± 10.8, BayesMulti −8.2 ± 12.9. What decides is the direction of the write-verify's
#: last pulse: of the characterised cells, 13 of 51 whose last pulse was a SET dissolved, 0 of
#: 40 whose last pulse was a RESET; the model would have to predict which of a deployment's
#: cells end on a SET, which depends on each cell's state before programming.)
#: Strict: the test fails as soon as the model agrees on ``typical``, so the marker cannot
#: outlive the fix.
MODEL_DISAGREES = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="issue 15 open: on typical the deployment model misses ERM by 4.1 points",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset",
    [
        pytest.param(p, marks=[MODEL_DISAGREES] if p == "typical" else [])
        for p in ("typical", "paper")
        if p in PROFILES
    ],
)
def test_model_agrees_with_the_physics_bench_over_seeds(moons_erm, preset: str) -> None:
    moons, erm = moons_erm
    bm = train_bayesmulti(moons, MOONS_SIZES, usability=0.5, n_init=3, n_iter=5, seed=0)
    nets = {"ERM": erm, "BayesMulti": bm}
    out = agreement(preset, range(10), nets, CharacterisationPlan(), moons)
    print(report(preset, out))
    for name, (bench, model) in out.items():
        assert abs(np.mean(model) - np.mean(bench)) <= 0.03, (name, report(preset, out))


def circuit_mvm(r_line: float):
    """An MVM through the circuit solver with line resistance ``r_line`` Ω per segment (rows
    driven at their left ends, columns at virtual ground): what a caller injects into the model
    (inference does not import the simulation)."""
    from sim_backends.solver import CrossbarCircuit, End

    def mvm(g: np.ndarray, v: np.ndarray) -> np.ndarray:
        trials, rows, cols = g.shape
        circuit = CrossbarCircuit(rows, cols, r_line, r_line)
        out = np.empty((trials, v.shape[1], cols))
        for t in range(trials):  # one factorisation per realised array
            system = circuit.factorize(
                g[t], np.full(rows, int(End.DRIVE)), np.full(cols, int(End.VGROUND))
            )
            out[t] = system.solve_batch(v[min(t, v.shape[0] - 1)])
        return out

    return mvm


def test_line_resistance_through_an_injected_solver(moons_erm) -> None:
    moons, erm = moons_erm
    profile = make_profile(programming={"converged_fraction": 0.9})
    kw = {"x_calib": moons.x_train, "n_trials": 3, "seed": 4}
    x = moons.x_test[:40]
    ideal = DeploymentModel(profile, read_noise="none").logits(erm, x, **kw)
    no_r = DeploymentModel(profile, read_noise="none", mvm=circuit_mvm(0.0)).logits(erm, x, **kw)
    assert np.allclose(no_r, ideal, rtol=1e-9, atol=1e-12)
    ir = DeploymentModel(profile, read_noise="none", mvm=circuit_mvm(500.0)).logits(erm, x, **kw)
    drop = np.abs(ir - ideal).max() / np.abs(ideal).max()
    assert 1e-4 < drop < 0.5  # IR drop along 500 Ω segments changes the outputs, not wildly
