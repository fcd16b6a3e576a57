"""Inference panel: ERM / BayesMulti training with a live BO trace, deployment, model files."""

from __future__ import annotations

import numpy as np
import pytest


def train(window, method: str, **kw) -> object:
    inf = window.inference_panel
    inf.method.setCurrentIndex(inf.method.findData(method))
    inf.epochs.setValue(kw.get("epochs", 80))
    inf.n_init.setValue(kw.get("n_init", 2))
    inf.n_iter.setValue(kw.get("n_iter", 1))
    inf.eval_trials.setValue(kw.get("trials", 2))
    inf.target_u.setValue(0.5)
    assert inf.train()
    assert window.runner.wait_idle(120)
    return inf.models[-1]


def test_train_erm_and_bayesmulti_with_live_bo_trace(window) -> None:
    inf = window.inference_panel
    erm = train(window, "erm")
    assert erm.model.method == "erm"
    assert inf.table.item(0, 3).text() == f"{erm.model.accuracies['test']:.3f}"
    xe, ye, classes = erm.boundary
    assert classes.shape == (160, 160) and set(np.unique(classes)) == {0, 1}
    np.testing.assert_array_equal(inf.db_image.image, classes.astype(float))
    bm = train(window, "bayesmulti")
    assert bm.model.method == "bayesmulti"
    trace = np.array([[t["p1"], t["p2"], t["objective"]] for t in bm.model.bo_trace])
    assert trace.shape == (3, 3)
    np.testing.assert_allclose(inf.bo_data(), trace)  # the scatter got every BO point live
    x, y = inf.bo_scatter.getData()
    np.testing.assert_allclose(x, trace[:, 0])
    np.testing.assert_allclose(y, trace[:, 1])
    assert (bm.model.p1, bm.model.p2) == tuple(trace[np.argmax(trace[:, 2]), :2])
    assert inf.table.rowCount() == 2


@pytest.mark.slow  # programs the network's ~50 cells on the simulated bench (~15 s)
def test_deploy_shows_software_and_hardware_accuracy(window) -> None:
    inf = window.inference_panel
    entry = train(window, "erm")
    inf.n_test.setValue(20)
    assert inf.deploy()
    assert window.runner.wait_idle(300)
    d = entry.last
    assert d is not None
    assert 0.0 <= d.software_accuracy <= 1.0 and 0.0 <= d.hardware_accuracy <= 1.0
    assert d.labels.size == 20
    text = inf.acc_label.text()
    assert f"software accuracy {d.software_accuracy:.3f}" in text
    assert f"hardware accuracy {d.hardware_accuracy:.3f}" in text
    assert inf.table.item(0, 6).text() == f"{d.hardware_accuracy:.3f}"
    hist = inf.p_err.listDataItems()
    assert len(hist) == 1
    counts = hist[0].getData()[1]
    assert int(np.sum(counts)) == np.isfinite(d.errors).sum()


def test_model_save_and_load_roundtrip(window, tmp_path) -> None:
    inf = window.inference_panel
    entry = train(window, "erm")
    assert inf.save_model(tmp_path / "erm")
    assert inf.load_model(tmp_path / "erm.json")
    assert window.runner.wait_idle(60)
    loaded = inf.models[-1]
    assert loaded.name == "erm"
    x = (
        entry.dataset.x_test[:50].astype(float) * entry.dataset.feature_std
        + entry.dataset.feature_mean
    )
    np.testing.assert_array_equal(loaded.model.predict(x), entry.model.predict(x))
    np.testing.assert_array_equal(loaded.boundary[2], entry.boundary[2])


def test_deploy_wiring_with_a_stand_in_run_on_crossbar(window, monkeypatch) -> None:
    """The panel's side of deployment with a fast stand-in for inference.deploy (same call
    signature; the real module runs in the test above): the call made, how results show."""
    import sys
    import types

    import torch

    from crossbar.progress import Progress
    from inference.deploy import DeployOptions

    calls, loop_calls = [], []

    def run_on_crossbar(crossbar, trained, x_test, y_test, *, x_train, progress, should_abort,
                        options, y_train, settle):  # fmt: skip
        calls.append((crossbar, trained, x_test, y_test, x_train))
        loop_calls.append((options, y_train, settle))
        currents = crossbar.mvm(np.full(crossbar.shape[0], 0.1))  # touches the bench
        assert currents.shape == (crossbar.shape[1],) and not should_abort()
        x, y = x_test, y_test
        with torch.no_grad():
            out_sw = trained.model(torch.as_tensor(x)).numpy().astype(float)
        out_hw = out_sw + np.random.default_rng(0).normal(0.0, 1.0, out_sw.shape)
        for i in range(len(y)):
            progress(Progress(i + 1, len(y), "MVM"))
        return types.SimpleNamespace(
            software_accuracy=float(np.mean(out_sw.argmax(1) == y)),
            hardware_accuracy=float(np.mean(out_hw.argmax(1) == y)),
            outputs_software=out_sw,
            outputs_hardware=out_hw,
            labels=np.asarray(y),
            predictions_hardware=out_hw.argmax(1),
        )

    fake = types.ModuleType("inference.deploy")
    fake.run_on_crossbar = run_on_crossbar
    fake.DeployOptions = DeployOptions
    monkeypatch.setitem(sys.modules, "inference.deploy", fake)
    inf = window.inference_panel
    entry = train(window, "erm")
    inf.n_test.setValue(30)
    assert inf.deploy()
    assert window.runner.wait_idle(60)
    assert len(calls) == 1
    crossbar, model, x_test, y_test, x_train = calls[0]
    assert crossbar is window.session.crossbar and model is entry.model
    np.testing.assert_array_equal(x_test, entry.dataset.x_test[:30])
    np.testing.assert_array_equal(x_train, entry.dataset.x_train)
    # the loop off (the defaults), the training labels passed all the same, no settling
    options, y_train, settle = loop_calls[0]
    assert options == DeployOptions() and settle == 0.0
    np.testing.assert_array_equal(y_train, entry.dataset.y_train)
    d = entry.last
    y = entry.dataset.y_test[:30]
    np.testing.assert_array_equal(d.labels, y)
    np.testing.assert_array_equal(d.pred_hw, d.outputs_hw.argmax(1))
    assert f"hardware accuracy {d.hardware_accuracy:.3f}" in inf.acc_label.text()
    assert d.steps == () and "deployment loop: off" in inf.acc_label.text()
    # the test-set column keeps the whole test set; the deployment's columns say on what
    assert inf.table.item(0, 3).text() == f"{entry.model.accuracies['test']:.3f}"
    assert inf.table.item(0, 4).text() == "30 pts"
    assert inf.table.item(0, 5).text() == f"{d.software_accuracy:.3f}"
    assert inf.table.item(0, 6).text() == f"{d.hardware_accuracy:.3f}"
    counts = inf.p_err.listDataItems()[0].getData()[1]
    assert int(np.sum(counts)) == d.errors.size == 60
    # misclassified-on-hardware points are drawn as crosses
    wrong = int(np.sum(d.pred_hw != y))
    crosses = sum(len(it.data) for it in inf.db_points if it.opts["symbol"] == "x")
    assert crosses == wrong
