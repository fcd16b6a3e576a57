"""The deployment noise model predicts what the physics backend's deployment gives.

For each bench seed and network: open the physics bench, characterise it (the deployment
profile of that very array), deploy the network with :func:`inference.deploy.run_on_crossbar`
(program-and-verify, MVMs on the simulated array) ``repeats`` times in a row, and evaluate the
same network with ``DeploymentModel(profile, stuck="profile")`` (200 test points, 200 trials).
The seed's bench accuracy is the mean of its deployments: one deployment is one draw of the
programming (on ``paper`` a single deployment's accuracy spreads by ±13 points on one array),
and the model predicts their mean. Each network gets its own freshly characterised array, so no
deployment starts from another network's conductances (on a device of few levels where the
stranded verifies end depends on what the cells held before; see the notes below). The claim:
the mean hardware accuracy over the seeds agrees within 3 points. The table (mean with 95 % CI
over seeds, and of the paired difference) is printed (``pytest -s``).

The quick suite runs a small grid (``optimized``, 1 seed, ERM, one deployment); the full check
(``typical`` — and ``paper`` when the simulation has that preset —, 20 seeds × 4 deployments,
ERM and BayesMulti) is slow.
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


def agreement(
    preset: str, seeds, nets: dict, plan: CharacterisationPlan, moons, repeats: int = 1
) -> dict:
    """Per network: (bench accuracies, model accuracies) over the seeds; a seed's bench accuracy
    is the mean of ``repeats`` deployments in a row on the array just characterised."""
    x, y = moons.x_test[:N_POINTS], moons.y_test[:N_POINTS]
    out = {name: ([], []) for name in nets}
    for seed in seeds:
        for name, net in nets.items():
            with Crossbar(physics_bench(preset, seed)) as xb:
                profile = characterise(xb, plan)
                bench = [
                    run_on_crossbar(xb, net, x, y, x_train=moons.x_train).hardware_accuracy
                    for _ in range(repeats)
                ]
            model = DeploymentModel(profile, stuck="profile")
            acc = model.accuracy(net, x, y, x_calib=moons.x_train, n_trials=200, seed=seed)
            out[name][0].append(float(np.mean(bench)))
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


#: Issue 15's acceptance: the mean hardware accuracy within 3 points. Measured with this
#: protocol (model − bench, mean ± 95 % CI over 20 seeds, 4 deployments each, points):
#: typical ERM −0.7 ± 2.9, BayesMulti +0.8 ± 2.7; paper ERM −0.4 ± 3.1, BayesMulti −0.2 ± 4.5.
#: One deployment per seed (the protocol before, 10 seeds, ERM then BayesMulti on the same
#: array) gave typical ERM −4.1 ± 8.3 — within its own noise of 0, and seeds 10–29 gave −3.5;
#: averaged over 4 deployments the same seeds 0–9 give −1.4 ± 3.6: the single deployment's
#: draw, not a bias of the model (20 seeds, one deployment each: −2.3 ± 4.8). Checked before
#: that: the bench dissolves as many converged cells as the model (12.2 % against 13.1 % at
#: the MVMs, typical seeds 0–19) and at every target alike (a filament dissolves after the
#: SET that grew it; the verify ends on a SET for 45–65 % of the cells in every band of
#: targets, and 26–45 % of those leave an unstable filament; the earlier impression that
#: high targets dissolve less came from 38 cells).
#: Limit found on ``paper`` (few levels; BayesMulti parks 47–49 of its 54 cells between two
#: levels, where the verify cannot converge and ends on a neighbour): where such a verify
#: ends depends on what the cells held before, which the profile does not know. Seeds 0–9,
#: BayesMulti, model 72.7: the bench gives 73.0 deployed right after the characterisation,
#: 77.3 (4 deployments) deployed after ERM's deployments on the same array, 79.9 on the
#: as-made array (never characterised). Hence each network here gets its own freshly
#: characterised array. (Tried: one RESET pulse at the cap before each verify, to start every
#: deployment from the HRS: typical lost 5.2 (ERM) and 3.7 (BayesMulti) points of hardware
#: accuracy and the model then missed ERM by +4.5 ± 2.4; not kept.)


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset",
    [p for p in ("typical", "paper") if p in PROFILES],
)
def test_model_agrees_with_the_physics_bench_over_seeds(moons_erm, preset: str) -> None:
    moons, erm = moons_erm
    bm = train_bayesmulti(moons, MOONS_SIZES, usability=0.5, n_init=3, n_iter=5, seed=0)
    nets = {"ERM": erm, "BayesMulti": bm}
    out = agreement(preset, range(20), nets, CharacterisationPlan(), moons, repeats=4)
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
