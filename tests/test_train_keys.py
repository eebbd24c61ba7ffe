"""No key of the grid's ``train`` section may be accepted and ignored.

``test_every_train_key_changes_the_run`` walks the fields of ``TrainConfig`` (a new key fails it until it is given
an alternative value here) and runs one fold of a tiny grid per key, changed alone from a recipe in which every key
is live; what the fold did (loss curve, trained parameters, evaluation batches, device) must differ.
"""

from __future__ import annotations

import pytest
import torch
from benchkit_datasets._mugen_rules import MUGEN_ACTIONS
from benchkit_predictors.prefix_gpt2 import PrefixGPT2
from benchkit_predictors.transformer_baselines import TransformerDecoderPredictor, TransformerEncoderPredictor
from benchkit_predictors.vedit import AttentiveProbe, VEDiT

from benchkit.errors import ConfigError
from benchkit.grid.config import TrainConfig, parse_grid
from benchkit.learn.training import CellModel, loss_options
from benchkit.registry.interfaces import PredictorSpec
from benchkit.run import folds
from benchkit.run.folds import FoldRunner, FoldTask
from benchkit.sequence.vocabulary import Vocabulary

VOCAB = Vocabulary(MUGEN_ACTIONS, delimiter=True)

# A recipe in which every key matters: 2 warm-up epochs (so warmup_mode and schedule shape the lr), batches that do
# not divide the training fold (so drop_last drops some), a label smoothing of 0 (the default).
# On the CPU, so that the runs are bit-for-bit repeatable.
BASE = {"epochs": 4, "batch_size": 3, "eval_batch_size": 256, "lr": 1e-3, "warmup": 0.5, "device": "cpu"}
# One other valid value per key.
ALTERNATIVE = {
    "epochs": 3,
    "batch_size": 4,
    "eval_batch_size": 3,
    "lr": 3e-3,
    "weight_decay": 0.5,
    "betas": (0.5, 0.9),
    "eps": 1e-2,
    "warmup": 0.25,
    "schedule": "constant",
    "warmup_mode": "reference",
    "label_smoothing": 0.2,
    "grad_clip": 1e-3,
    "drop_last": False,
    "device": "cuda",  # trains on the GPU where there is one, and is refused where there is none
    "standardize": True,
}


def _predictors():
    spec = PredictorSpec(prefix_dim=16, prefix_tokens=2, vocabulary=VOCAB, max_len=5)
    return {
        "prefix-gpt2": lambda: PrefixGPT2(spec, n_layer=1, n_embd=16, n_head=2, n_positions=16, dropout=0.0),
        "vedit": lambda: VEDiT(spec, layers=1, dim=32, head_dim=16, steps=2, classifier_heads=2),
        "attentive-probe": lambda: AttentiveProbe(spec, heads=2),
        "transformer-encoder": lambda: TransformerEncoderPredictor(spec, width=16, heads=2, layers=1, ff=16,
                                                                    dropout=0.0, head_dropout=0.0),
        "transformer-decoder": lambda: TransformerDecoderPredictor(spec, width=16, heads=2, layers=1, dropout=0.0),
    }


@pytest.mark.parametrize("name", list(_predictors()))
def test_label_smoothing_reaches_every_cross_entropy_predictor(name):
    torch.manual_seed(0)
    model = CellModel(torch.nn.Identity(), _predictors()[name]()).eval()
    prefix = torch.randn(4, 2, 16)
    tokens = torch.tensor([VOCAB.encode([a, b, c], 5) for a, b, c in ([0, 1, 2], [3, 4, 5], [6, 0, 1], [2, 2, 2])])

    def loss(smoothing):
        torch.manual_seed(1)  # VEDiT samples its targets from noise
        return model.loss(prefix, tokens, **loss_options(model.predictor, TrainConfig(label_smoothing=smoothing)))

    plain, smoothed = loss(0.0), loss(0.3)
    assert torch.isfinite(smoothed) and not torch.equal(plain, smoothed)
    torch.testing.assert_close(loss(0.0), plain)


def test_label_smoothing_for_a_loss_without_it_is_an_error():
    class Regression(torch.nn.Module):
        def loss(self, prefix, tokens):
            return prefix.square().mean()

    assert loss_options(Regression(), TrainConfig()) == {}
    with pytest.raises(ConfigError, match="label_smoothing"):
        loss_options(Regression(), TrainConfig(label_smoothing=0.1))


_FIT, _PREDICT = folds.fit, CellModel.predict


def _observe(tiny_grid, registry, monkeypatch, **train) -> dict:
    """Run fold 0 of the first cell with ``train`` over ``BASE``: what changed and how."""
    trained, eval_batches = {}, []

    def spy_fit(model, *args):
        history = _FIT(model, *args)
        trained.update({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        return history

    def spy_predict(self, features):
        eval_batches.append(len(features))
        return _PREDICT(self, features)

    monkeypatch.setattr(folds, "fit", spy_fit)
    monkeypatch.setattr(CellModel, "predict", spy_predict)
    tiny_grid.update(level="frame", train={**BASE, **train})
    grid = parse_grid(tiny_grid)
    try:
        runner = FoldRunner(grid, registry)
        record, _ = runner.run(FoldTask(next(iter(runner.cells)), 0))
    except ConfigError as e:  # a value this machine cannot honour is refused, not ignored
        return {"error": str(e)}
    return {"loss": record["loss_curve"], "params": trained, "eval_batches": eval_batches, "device": record["device"],
            "n_train": record["n_train"]}


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys() or "error" in a:
        return a == b
    params = a["params"].keys() == b["params"].keys() and all(torch.equal(a["params"][k], b["params"][k])
                                                              for k in a["params"])
    return params and all(a[k] == b[k] for k in ("loss", "eval_batches", "device"))


def test_every_train_key_changes_the_run(tiny_grid, registry, monkeypatch):
    fields = set(TrainConfig.model_fields)
    assert fields == set(ALTERNATIVE), f"give every train key an alternative value: {fields ^ set(ALTERNATIVE)}"
    base = TrainConfig(**BASE)
    for key, value in ALTERNATIVE.items():
        assert getattr(base, key) != value, key
        TrainConfig(**{**BASE, key: value})  # valid

    reference = _observe(dict(tiny_grid), registry, monkeypatch)
    assert reference["n_train"] % BASE["batch_size"], "drop_last needs a partial last batch"
    assert _same(reference, _observe(dict(tiny_grid), registry, monkeypatch)), "a fold must be deterministic"
    observed = {key: _observe(dict(tiny_grid), registry, monkeypatch, **{key: value})
                for key, value in ALTERNATIVE.items()}
    refused = {key: o["error"] for key, o in observed.items() if "error" in o}
    assert refused == ({} if torch.cuda.is_available() else {"device": refused.get("device")}), refused
    ignored = [key for key, o in observed.items() if _same(reference, o)]
    assert not ignored, f"train keys accepted and ignored: {ignored}"
