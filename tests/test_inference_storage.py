"""Saving and loading trained models (state dict + JSON metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.data import make_moons_dataset
from inference.models import MOONS_SIZES
from inference.storage import ModelFileError, load_model, model_paths, save_model
from inference.training import train_bayesmulti, train_erm


class Payload:
    """A custom class: pickling it makes a file that weights_only loading must refuse."""

    def __init__(self) -> None:
        self.note = "not a tensor"


@pytest.fixture(scope="module")
def trained():
    ds = make_moons_dataset(seed=0)
    bm = train_bayesmulti(
        ds, MOONS_SIZES, usability=0.5, n_init=2, n_iter=1, epochs=80, n_eval_trials=5
    )
    return ds, bm


def test_round_trip(tmp_path: Path, trained) -> None:
    ds, bm = trained
    pt, js = save_model(bm, tmp_path / "sub" / "bm")
    assert (pt.name, js.name) == ("bm.pt", "bm.json")
    for path in (tmp_path / "sub" / "bm", pt, js):  # stem, .pt or .json all work
        back = load_model(path)
        assert back.sizes == MOONS_SIZES and back.method == "bayesmulti"
        assert (back.p1, back.p2) == (bm.p1, bm.p2)
        assert back.bo_trace == bm.bo_trace
        assert back.accuracies == pytest.approx(bm.accuracies)
        assert back.target == pytest.approx(bm.target)
        assert (back.data_name, back.data_seed, back.data_noise) == ("moons", 0, 0.2)
        assert np.allclose(back.feature_mean, ds.feature_mean)
        for a, b in zip(back.model.parameters(), bm.model.parameters()):
            assert torch.equal(a, b)
        assert np.array_equal(back.model.predict(ds.x_test), bm.model.predict(ds.x_test))
        raw = ds.x_test * ds.feature_std + ds.feature_mean  # deployment path: raw features
        assert np.mean(back.predict(raw) == bm.model.predict(ds.x_test)) > 0.99
    meta = json.loads(js.read_text())
    assert meta["sizes"] == [2, 5, 2] and meta["activation"] == "relu"
    assert set(torch.load(pt, weights_only=True)) == {
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
    }


def test_mismatched_architecture(tmp_path: Path, trained) -> None:
    _, bm = trained
    pt, js = save_model(bm, tmp_path / "m")
    meta = json.loads(js.read_text())
    meta["sizes"] = [2, 6, 2]
    js.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"m\.pt.*does not match.*\[2, 6, 2\].*shapes"):
        load_model(pt)
    meta["sizes"] = [2, 5, 5, 2]
    js.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="missing keys.*layers.2"):
        load_model(pt)


def test_unsafe_pickle_is_refused(tmp_path: Path, trained) -> None:
    _, bm = trained
    pt, js = save_model(bm, tmp_path / "evil")
    torch.save({"layers.0.weight": Payload()}, pt)  # a pickled custom object
    with pytest.raises(ModelFileError, match=r"evil\.pt.*weights-only"):
        load_model(pt)


def test_missing_and_bad_files(tmp_path: Path, trained) -> None:
    _, bm = trained
    pt, js = save_model(bm, tmp_path / "a")
    js.unlink()
    with pytest.raises(ModelFileError, match=r"a\.json.*missing"):
        load_model(pt)
    pt, js = save_model(bm, tmp_path / "b")
    pt.unlink()
    with pytest.raises(ModelFileError, match=r"b\.pt.*missing"):
        load_model(js)
    pt, js = save_model(bm, tmp_path / "c")
    js.write_text("{not json")
    with pytest.raises(ModelFileError, match=r"c\.json.*not valid JSON"):
        load_model(pt)
    js.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelFileError, match="not a model metadata file"):
        load_model(pt)
    pt, js = save_model(bm, tmp_path / "d")
    pt.write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match=r"d\.pt"):
        load_model(pt)
    assert issubclass(ModelFileError, ValueError)


def test_erm_round_trip_and_paths(tmp_path: Path) -> None:
    ds = make_moons_dataset(seed=1)
    erm = train_erm(ds, MOONS_SIZES, epochs=50, seed=1)
    save_model(erm, tmp_path / "erm.pt")
    back = load_model(tmp_path / "erm")
    assert back.method == "erm" and back.model.noise is None and back.bo_trace == []
    assert model_paths(tmp_path / "x.json") == (tmp_path / "x.pt", tmp_path / "x.json")


@pytest.mark.parametrize("method", ["linear", "hwa", "bayesmulti+hwa"])
def test_round_trip_of_every_method(tmp_path: Path, method: str) -> None:
    from test_inference_hardware_model import make_profile

    from inference.hardware_model import DeploymentModel
    from inference.training import train_method

    ds = make_moons_dataset(seed=0)
    hw = DeploymentModel(make_profile(read_noise={"sigma_rel": 0.05}))
    tm = train_method(
        method, ds, MOONS_SIZES, hardware=hw, epochs=30, n_init=1, n_iter=0, n_eval_trials=2
    )
    save_model(tm, tmp_path / method)
    back = load_model(tmp_path / method)
    assert back.method == method and back.sizes == tm.sizes
    assert back.training == tm.training and back.target == tm.target
    assert np.array_equal(back.model.predict(ds.x_test), tm.model.predict(ds.x_test))
