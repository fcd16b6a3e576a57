"""Save and load trained models: ``<stem>.pt`` (state dict only) + ``<stem>.json`` (metadata).

The ``.pt`` file holds nothing but the network's ``state_dict`` (tensors), read back with
``torch.load(..., weights_only=True)`` so a file cannot run code when loaded. The ``.json`` file
holds the architecture (sizes, activation, noise site), the method, the data set (name, seed,
noise) and its feature transform (mean, std), p1 / p2, the BO trace, the objective and target,
the training settings and the software accuracies.

Every problem — a missing or malformed JSON, a missing ``.pt``, a file ``weights_only`` refuses
(a pickled object), a state dict whose keys or shapes do not match the JSON architecture — is a
:class:`ModelFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossbar.datastore import to_jsonable

from .models import MLP, MultinomialNoise
from .training import TrainedModel

MODEL_FORMAT = "xbar-model/1"
_REQUIRED = (
    "sizes",
    "activation",
    "noise_site",
    "method",
    "p1",
    "p2",
    "data",
    "feature_mean",
    "feature_std",
)


class ModelFileError(ValueError):
    """A saved model (``.pt`` / ``.json`` pair) is missing, unsafe, malformed or inconsistent."""


def _stem(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix in (".pt", ".json"):
        return path.with_suffix("")
    return path


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """``(<stem>.pt, <stem>.json)`` for a stem or either file's path."""
    stem = _stem(path)
    return stem.with_name(stem.name + ".pt"), stem.with_name(stem.name + ".json")


def save_model(trained: TrainedModel, path_stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.pt`` (state dict) and ``<stem>.json`` (metadata); returns both paths."""
    pt, js = model_paths(path_stem)
    pt.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in trained.model.state_dict().items()}
    torch.save(state, pt)
    meta = {
        "format": MODEL_FORMAT,
        "sizes": list(trained.sizes),
        "activation": trained.activation,
        "noise_site": trained.noise_site,
        "method": trained.method,
        "p1": trained.p1,
        "p2": trained.p2,
        "data": {"name": trained.data_name, "seed": trained.data_seed, "noise": trained.data_noise},
        "feature_mean": trained.feature_mean,
        "feature_std": trained.feature_std,
        "accuracies": trained.accuracies,
        "training": trained.training,
        "objective": trained.objective,
        "target": trained.target,
        "n_eval_trials": trained.n_eval_trials,
        "bo_trace": trained.bo_trace,
        "state_dict_file": pt.name,
    }
    js.write_text(json.dumps(to_jsonable(meta, finite_only=True), indent=1))
    return pt, js


def _read_meta(js: Path) -> dict[str, Any]:
    if not js.is_file():
        raise ModelFileError(f"{js}: model metadata file is missing (expected next to the .pt)")
    try:
        meta = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{js}: cannot read model metadata ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{js}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{js}: not a model metadata file (expected format {MODEL_FORMAT!r})")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise ModelFileError(f"{js}: missing keys {missing}")
    return meta


def _build(meta: dict[str, Any], js: Path) -> MLP:
    try:
        noise = None
        if meta["method"] != "erm" and (meta["p1"] or meta["p2"]):
            noise = MultinomialNoise(float(meta["p1"]), float(meta["p2"]))
        return MLP(
            [int(s) for s in meta["sizes"]],
            activation=meta["activation"],
            noise=noise,
            noise_site=meta["noise_site"],
        )
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{js}: invalid architecture ({exc})") from exc


def load_model(path: str | Path) -> TrainedModel:
    """Read a model saved by :func:`save_model` (give the stem, the ``.pt`` or the ``.json``).

    Raises:
        ModelFileError: missing files, invalid JSON, an unsafe or unreadable ``.pt``
            (``weights_only=True`` refuses pickled objects), or a state dict that does not match
            the architecture in the JSON (keys or shapes).
    """
    pt, js = model_paths(path)
    meta = _read_meta(js)
    model = _build(meta, js)
    if not pt.is_file():
        raise ModelFileError(f"{pt}: model weights file is missing (metadata is {js.name})")
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{pt}: not a safe weights-only state dict (torch.load(weights_only=True) refused "
            f"it: {reason[:200]})"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{pt}: expected a state dict of tensors, got {type(state).__name__}")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k}: file {found[k]} vs architecture {expected[k]}"
        for k in sorted(set(expected) & set(found))
        if found[k] != expected[k]
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if wrong:
            parts.append("wrong shapes " + "; ".join(wrong))
        raise ModelFileError(
            f"{pt}: state dict does not match the architecture {meta['sizes']} in {js.name}: "
            + ", ".join(parts)
        )
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    data = meta.get("data") or {}
    return TrainedModel(
        model=model,
        method=str(meta["method"]),
        sizes=tuple(int(s) for s in meta["sizes"]),
        activation=str(meta["activation"]),
        noise_site=str(meta["noise_site"]),
        p1=float(meta["p1"]),
        p2=float(meta["p2"]),
        data_name=str(data.get("name", "")),
        data_seed=int(data.get("seed", 0)),
        data_noise=data.get("noise"),
        feature_mean=np.asarray(meta["feature_mean"], dtype=np.float64),
        feature_std=np.asarray(meta["feature_std"], dtype=np.float64),
        accuracies={k: float(v) for k, v in (meta.get("accuracies") or {}).items()},
        training=dict(meta.get("training") or {}),
        objective=meta.get("objective"),
        target=meta.get("target"),
        n_eval_trials=meta.get("n_eval_trials"),
        bo_trace=list(meta.get("bo_trace") or []),
    )
