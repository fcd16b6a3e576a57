"""The choices and defaults the inference package accepts, importable without torch.

The command line offers them in ``xbar train|robustness|infer --help``, which must not load torch;
the modules that use them import them from here.
"""

from __future__ import annotations

#: Data sets of :func:`inference.data.load_dataset`.
DATA_NAMES = ("moons", "digits")
#: Training methods (:func:`inference.training.train_method`, ``xbar train --method``).
METHODS = ("erm", "bayesmulti", "hwa", "bayesmulti+hwa", "linear")
#: Training methods that need a hardware model (a deployment profile or a usability).
HARDWARE_METHODS = ("hwa", "bayesmulti+hwa")
#: Where the multinomial hardware noise is applied (:class:`inference.models.MLP`).
NOISE_SITES = ("activations", "weights")
#: BayesMulti's Bayesian-optimisation objectives (:func:`inference.training.train_bayesmulti`).
OBJECTIVES = ("hardware", "train_accuracy")
#: How the robustness study tunes BayesMulti (:func:`inference.robustness.run_study`): once
#: (default; the one model is tested at every level) or at every level with that level's noise
#: known (an oracle).
TUNE_MODES = ("once", "per-level")
#: Program-and-verify relative tolerance of a deployment (0..1), ``DeployOptions.tol``.
DEPLOY_TOL = 0.03
