"""Hyper-parameter selection: candidate syntax, nested validation that never sees the test fold, candidates trained
together giving a separate fit's predictions, and what the fold records keep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchkit.errors import ConfigError
from benchkit.grid.config import TrainConfig, parse_grid
from benchkit.grid.plan import plan
from benchkit.learn.together import decode_together, fit_together
from benchkit.learn.training import Batches, CellModel, fit, predict, seed_everything
from benchkit.registry.interfaces import FeatureSpec, PredictorSpec
from benchkit.run.runner import run_grid
from benchkit.run.selection import validation_indices
from benchkit.run.splits import group_kfold, validation_split
from benchkit.sequence.vocabulary import Vocabulary, until_eos

LRS = [3.0e-3, 1.0e-3]


def _grid(tiny_grid: dict, **changes) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(tiny_grid))
    for key, value in changes.items():
        node = raw
        *parents, last = key.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return raw


# -- syntax -------------------------------------------------------------------------------------------------------


def test_train_candidates_parse_and_round_trip(tiny_grid):
    grid = parse_grid(_grid(tiny_grid, train__lr={"select": LRS}, train__weight_decay={"select": [0.0, 0.1]}))
    assert grid.train.lr == LRS[0] and grid.train_choices == {"lr": LRS, "weight_decay": [0.0, 0.1]}
    dumped = grid.model_dump(mode="json")
    assert dumped["train"]["lr"] == {"select": LRS}
    assert parse_grid(dumped).train_choices == grid.train_choices


def test_product_and_zip(tiny_grid, registry):
    raw = _grid(tiny_grid, train__lr={"select": LRS}, train__weight_decay={"select": [0.0, 0.1]})
    cells = plan(parse_grid(raw), registry)
    assert [v.values for v in cells[0].variants] == [
        {"train.lr": 3e-3, "train.weight_decay": 0.0}, {"train.lr": 3e-3, "train.weight_decay": 0.1},
        {"train.lr": 1e-3, "train.weight_decay": 0.0}, {"train.lr": 1e-3, "train.weight_decay": 0.1}]
    assert [v.train.weight_decay for v in cells[0].variants] == [0.0, 0.1, 0.0, 0.1]
    zipped = plan(parse_grid({**raw, "selection": {"combine": "zip"}}), registry)
    assert [v.values for v in zipped[0].variants] == [
        {"train.lr": 3e-3, "train.weight_decay": 0.0}, {"train.lr": 1e-3, "train.weight_decay": 0.1}]
    # candidates of one architecture train together; an aggregator keyword makes two architectures
    assert len({v.architecture for v in cells[0].variants}) == 1
    raw = _grid(tiny_grid, aggregator=[{"name": "gem", "p": {"select": [2.0, 3.0]}}], train__lr={"select": LRS})
    (cell, *_) = plan(parse_grid(raw), registry)
    assert [v.values for v in cell.variants][:2] == [{"train.lr": 3e-3, "aggregator.p": 2.0},
                                                     {"train.lr": 3e-3, "aggregator.p": 3.0}]
    assert len({v.architecture for v in cell.variants}) == 2 and cell.variants[1].aggregator.kwargs["p"] == 3.0


@pytest.mark.parametrize(("changes", "message"), [
    ({"train__lr": {"select": []}}, "train.lr: select needs a non-empty list"),
    ({"train__lr": {"select": [1e-3, 1e-3]}}, "train.lr: select lists a value twice"),
    ({"train__lr": {"select": [1e-3, -1]}}, "train.lr: candidate -1: Input should be greater than 0"),
    ({"train__lr": {"select": [1e-3], "other": 1}}, "unexpected keys"),
    ({"train__device": {"select": ["cpu", "auto"]}}, "train.device: not selectable"),
    ({"train__betas": [{"select": [0.9]}, 0.99]}, "must be the whole value of a top-level key"),
    ({"backbone__dim": {"select": [16, 32]}}, "only train keys and aggregator or predictor keywords"),
    ({"selection": {"metric": "accuracy"}}, "selection: no train key or aggregator/predictor keyword lists"),
    ({"train__lr": {"select": LRS}, "selection": {"metric": "bleu"}}, "selection.metric: 'bleu' is not a metric"),
    ({"train__lr": {"select": LRS}, "selection": {"validation_label": "val"}}, "only a fixed_split protocol"),
    ({"train__lr": {"select": LRS}, "train__eps": {"select": [1e-8]}, "selection": {"combine": "zip"}},
     "zip needs candidate lists of one length"),
    ({"train__lr": {"select": [i * 1e-4 + 1e-4 for i in range(9)]},
      "train__weight_decay": {"select": [i * 0.01 for i in range(9)]}}, "81 candidates per cell"),
    ({"train__lr": {"select": [i * 1e-5 + 1e-5 for i in range(65)]},
      "train__eps": {"select": [i * 1e-9 + 1e-9 for i in range(65)]}, "selection": {"combine": "zip"}},
     "65 candidates per cell"),
    ({"train__lr": {"select": LRS}, "protocol": {"kind": "fixed_split", "test_label": "val"},
      "selection": {"validation_label": "val"}}, "'val' is the protocol's test_label"),
    ({"train__lr": {"select": LRS}, "protocol": {"kind": "fixed_split"},
      "selection": {"validation_label": "val", "validation": 0.3}}, "remove one of the two"),
])
def test_bad_candidates_are_one_line_errors(tiny_grid, registry, changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        plan(parse_grid(_grid(tiny_grid, **changes)), registry)


def test_only_keeps_a_selecting_grid_valid(tiny_grid, registry):
    raw = _grid(tiny_grid, aggregator=["mean", {"name": "gem", "p": {"select": [2.0, 3.0]}}],
                selection={"validation": 0.25})
    cells = plan(parse_grid(raw), registry, [{"aggregator": "mean"}])
    assert cells and not any(pc.variants for pc in cells)


def test_cell_id_covers_the_candidates_and_settings(tiny_grid, registry):
    def ids(raw):
        return [pc.id for pc in plan(parse_grid(raw), registry)]

    plain = ids(tiny_grid)
    assert all("selection" not in pc.config for pc in plan(parse_grid(tiny_grid), registry))
    selected = ids(_grid(tiny_grid, train__lr={"select": LRS}))
    other_list = ids(_grid(tiny_grid, train__lr={"select": [*LRS, 1e-4]}))
    other_setting = ids(_grid(tiny_grid, train__lr={"select": LRS}, selection={"validation": 0.3}))
    refit = ids(_grid(tiny_grid, train__lr={"select": LRS}, selection={"refit": True}))
    assert len({tuple(x) for x in (plain, selected, other_list, other_setting, refit)}) == 5
    assert ids(_grid(tiny_grid, train__lr=LRS[0])) != selected  # one fixed value is not a selection


# -- validation split ---------------------------------------------------------------------------------------------


def test_validation_split_respects_groups_and_never_touches_test():
    groups = [f"video-{i // 3}" for i in range(60)]
    for train, test in group_kfold(groups, 3, seed=0):
        inner, val = validation_split(train, groups, 0.2, 0, seed=0)
        assert set(inner) | set(val) == set(train) and not set(inner) & set(val) and not set(val) & set(test)
        assert not {groups[i] for i in inner} & {groups[i] for i in val}  # no video on both sides
        assert abs(len(val) - 0.2 * len(train)) <= 3
        again = validation_split(train, groups, 0.2, 0, seed=0)
        assert np.array_equal(again[1], val)


class _Labelled:
    def __init__(self, labels):
        self.labels = labels

    def groups(self, key=None):
        return self.labels if key == "split" else [f"v{i}" for i in range(len(self.labels))]


def test_fixed_split_validates_on_the_datasets_own_split(tiny_grid):
    labels = ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    raw = _grid(tiny_grid, protocol={"kind": "fixed_split"}, train__lr={"select": LRS},
                selection={"validation_label": "val"})
    inner, val, source = validation_indices(parse_grid(raw), _Labelled(labels), np.arange(6), 0)
    assert list(inner) == list(range(6)) and list(val) == [6, 7] and "'val'" in source
    raw["selection"] = {}
    inner, val, _ = validation_indices(parse_grid(raw), _Labelled(labels), np.arange(6), 0)
    assert set(inner) | set(val) == set(range(6)) and len(val) == 1


# -- training together ----------------------------------------------------------------------------------------------


def _cell(registry, aggregator, predictor, level, kwargs=None):
    spec = FeatureSpec(level=level, dim=16, frames=4, grid=(2, 2) if level == "patch" else None)
    vocabulary = Vocabulary(["a", "b", "c", "d"])

    def build(_k=0):
        seed_everything(5)
        agg = registry.build("aggregator", registry.resolve("aggregator", aggregator, {}), spec)
        pspec = PredictorSpec(prefix_dim=agg.out_dim, prefix_tokens=agg.num_tokens, vocabulary=vocabulary,
                              max_len=5)
        return CellModel(agg, registry.build("predictor", registry.resolve("predictor", predictor, kwargs or {}),
                                             pspec))

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(64, 4, 4, 16) if level == "patch" else (64, 4, 16)).astype(np.float16)
    tokens = np.array([vocabulary.encode(list(a), 5) for a in rng.integers(0, 4, size=(64, 3))])
    return build, Batches(feats, tokens, np.arange(64))


TOGETHER = [  # dropout everywhere: GPT-2 (0.1), the SCHEMA decoder's post-attention dropout on a permuted tensor
    ("lstm", "patch", "prefix-gpt2", {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 16, "dropout": 0.1}),
    ("invpatch-tiny", "patch", "prefix-gpt2", {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64}),
    ("mean", "frame", "transformer-decoder", {"width": 16, "heads": 2, "layers": 1}),
    ("mean", "frame", "vedit", {"layers": 1, "dim": 16, "head_dim": 8, "steps": 2}),
]


@pytest.mark.parametrize(("aggregator", "level", "predictor", "kwargs"), TOGETHER)
def test_candidates_trained_together_match_separate_fits(registry, aggregator, level, predictor, kwargs):
    """Tolerance: the vectorised step computes the same float32 operations as a separate fit, but batched kernels
    sum in another order (relative rounding ~1e-7 per reduction). Over the few Adam steps here the parameters drift
    apart by at most ~1e-4 (measured 3e-7 to 1.6e-4 over every registered aggregator and predictor), three orders
    of magnitude below what moves a greedy decision; so the loss curves must agree to 1e-4 relative, the weights
    to 1e-3 and the decoded sequences exactly."""
    build, batches = _cell(registry, aggregator, predictor, level, kwargs)
    configs = [TrainConfig(epochs=2, batch_size=16, lr=lr, weight_decay=wd, grad_clip=clip)
               for lr, wd, clip in [(1e-3, 0.1, None), (3e-3, 0.0, 1.0), (1e-4, 0.1, None)]]
    trained = fit_together(build, configs, batches, seed=11, device=torch.device("cpu"))
    assert trained.vectorised, trained.reason
    for k, cfg in enumerate(configs):
        alone = build()
        history = fit(alone, batches, cfg, seed=11, device=torch.device("cpu"))
        np.testing.assert_allclose(trained.histories[k]["loss_curve"], history["loss_curve"], rtol=1e-4)
        for a, b in zip(alone.parameters(), trained.models[k].parameters(), strict=True):
            assert (a - b).abs().max().item() < 1e-3
        seed_everything(3)
        expected = predict(alone, batches, 64, torch.device("cpu"))
        seed_everything(3)
        assert predict(trained.models[k], batches, 64, torch.device("cpu")) == expected


@pytest.mark.parametrize(("aggregator", "level", "predictor", "kwargs"), TOGETHER)
def test_candidates_decode_together_as_one_by_one(registry, aggregator, level, predictor, kwargs):
    """Decoded together (vmap over ``greedy_tokens``, or over ``logits`` for Viterbi), every candidate writes the
    tokens its own ``predict`` writes, from the same random state (VEDiT draws its start noise), and the same
    logits to float rounding; the LSTM's candidates decode with their aggregators one by one, as they trained."""
    build, batches = _cell(registry, aggregator, predictor, level, kwargs)
    configs = [TrainConfig(epochs=1, batch_size=16, lr=lr) for lr in (1e-3, 1e-2, 3e-2)]
    trained = fit_together(build, configs, batches, seed=11, device=torch.device("cpu"))
    cpu = torch.device("cpu")
    seed_everything(3)
    together = decode_together(trained.models, trained.scope, "greedy_tokens", batches, 24, cpu)
    eos = trained.models[0].predictor.eos
    for k, model in enumerate(trained.models):
        seed_everything(3)
        assert [until_eos(row, eos) for row in together[k].tolist()] == predict(model, batches, 24, cpu)
    if hasattr(trained.models[0].predictor, "logits"):
        seed_everything(3)
        logits = decode_together(trained.models, trained.scope, "logits", batches, 24, cpu)
        for k, model in enumerate(trained.models):
            seed_everything(3)
            with torch.no_grad():
                alone = torch.cat([model.predictor.logits(model.prefix(x)) for x, _ in batches.epoch(24, None, False)])
            torch.testing.assert_close(logits[k], alone, rtol=1e-4, atol=1e-5)


def test_a_predictor_without_greedy_tokens_decodes_one_by_one(registry):
    build, batches = _cell(registry, "mean", "transformer-decoder", "frame", {"width": 16, "heads": 2, "layers": 1})
    models = [build(), build()]
    with pytest.raises(NotImplementedError, match="has no beam_tokens"):
        decode_together(models, "model", "beam_tokens", batches, 16, torch.device("cpu"))


class _Branchy(torch.nn.Module):
    """A predictor whose loss branches on a value of its own weights: vmap cannot trace it at all."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.head = torch.nn.Linear(dim, 4)

    def loss(self, prefix, tokens):
        logits = self.head(prefix[:, 0])
        scale = 2.0 if logits.sum() > 0 else 1.0  # data-dependent control flow
        return torch.nn.functional.cross_entropy(scale * logits, tokens[:, 1] % 4)


def test_unvectorisable_model_falls_back_to_separate_fits(registry):
    """A model vmap can trace neither whole nor predictor-only trains its candidates one after the other, which is
    exactly a separate fit each, and the reason is kept."""
    spec = FeatureSpec(level="frame", dim=16, frames=4, grid=None)

    def build(_k=0):
        seed_everything(2)
        agg = registry.build("aggregator", registry.resolve("aggregator", "mean", {}), spec)
        return CellModel(agg, _Branchy(16))

    rng = np.random.default_rng(1)
    batches = Batches(rng.normal(size=(32, 4, 16)).astype(np.float16), rng.integers(0, 6, size=(32, 4)),
                      np.arange(32))
    configs = [TrainConfig(epochs=2, batch_size=8, lr=lr) for lr in LRS]
    trained = fit_together(build, configs, batches, seed=1, device=torch.device("cpu"))
    assert not trained.vectorised and "model: RuntimeError" in trained.reason and "predictor: " in trained.reason
    alone = build()
    assert fit(alone, batches, configs[1], seed=1, device=torch.device("cpu"))["loss_curve"] == \
        trained.histories[1]["loss_curve"]


def test_an_aggregator_without_a_batching_rule_trains_with_vectorised_predictors(registry):
    """The LSTM's fused kernel has no batching rule: the aggregators run one by one from one random state (the
    frame-level LSTM here has dropout between its layers), the predictors together; same result as separate fits."""
    spec = FeatureSpec(level="frame", dim=16, frames=4, grid=None)
    vocabulary = Vocabulary(["a", "b"])

    def build(_k=0):
        seed_everything(2)
        agg = registry.build("aggregator", registry.resolve("aggregator", "lstm", {"hidden_size": 8}), spec)
        agg.rnn.dropout = 0.5
        pspec = PredictorSpec(prefix_dim=agg.out_dim, prefix_tokens=1, vocabulary=vocabulary, max_len=4)
        return CellModel(agg, registry.build("predictor", registry.resolve(
            "predictor", "prefix-gpt2", {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 16}), pspec))

    rng = np.random.default_rng(1)
    feats = rng.normal(size=(32, 4, 16)).astype(np.float16)
    tokens = np.array([vocabulary.encode(list(a), 4) for a in rng.integers(0, 2, size=(32, 2))])
    batches = Batches(feats, tokens, np.arange(32))
    configs = [TrainConfig(epochs=2, batch_size=8, lr=lr) for lr in LRS]
    trained = fit_together(build, configs, batches, seed=1, device=torch.device("cpu"))
    assert trained.vectorised and trained.scope == "predictor" and "aten::lstm" in trained.reason
    for k, cfg in enumerate(configs):
        alone = build()
        history = fit(alone, batches, cfg, seed=1, device=torch.device("cpu"))
        np.testing.assert_allclose(trained.histories[k]["loss_curve"], history["loss_curve"], rtol=1e-4)


def test_a_diverging_candidate_is_never_selected(registry):
    build, batches = _cell(registry, "mean", "transformer-encoder", "frame",
                           {"width": 16, "heads": 2, "layers": 1, "ff": 16})
    configs = [TrainConfig(epochs=3, batch_size=16, lr=lr, warmup=0) for lr in (1e40, 1e-3)]
    trained = fit_together(build, configs, batches, seed=0, device=torch.device("cpu"))
    assert [h["diverged"] for h in trained.histories] == [True, False]
    assert all(np.isfinite(trained.histories[0]["loss_curve"]))  # the record stays valid JSON
    assert len(trained.histories[1]["loss_curve"]) == 3


# -- in a run -----------------------------------------------------------------------------------------------------


def _records(run_dir):
    return {(r["cell"], r["fold"]): r for r in (json.loads(p.read_text())
                                               for p in sorted(run_dir.glob("cells/*/fold-*[0-9].json")))}


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory, registry):
    from conftest import TINY_GRID

    raw = yaml.safe_load(yaml.safe_dump(TINY_GRID))
    raw["dataset"]["videos"] = 10
    raw["aggregator"] = ["mean", {"name": "gem", "p": {"select": [2.0, 3.0]}}]
    raw["level"] = "patch"
    raw["train"]["lr"] = {"select": LRS}
    raw["train"]["standardize"] = True  # the candidates share the inner part's statistics; a refit fits its own
    run_dir = tmp_path_factory.mktemp("selection") / "run"
    summary = run_grid(parse_grid(raw), run_dir, registry, say=lambda m: None, progress=False)
    return raw, run_dir, summary


def test_fold_records_keep_every_candidate_and_the_choice(selected_run):
    _, run_dir, summary = selected_run
    assert not summary.failed
    records = _records(run_dir)
    assert len(records) == 4
    for record in records.values():
        sel = record["selection"]
        scores = [c["validation"]["accuracy"] for c in sel["candidates"]]
        best = max(scores)
        assert sel["selected"] == scores.index(best)  # the best, the first listed on a tie
        assert sel["values"] == sel["candidates"][sel["selected"]]["values"]
        assert record["n_train"] == sel["validation"]["n_train"]  # no refit: the validated model is tested
        assert sum(len(t["candidates"]) for t in sel["training"]) == len(sel["candidates"])
        assert all(t["vectorised"] and t["decoding"] == "together" for t in sel["training"])
    gem = [r for r in records.values() if len(r["selection"]["candidates"]) == 4]
    assert len(gem) == 2 and all(len(r["selection"]["training"]) == 2 for r in gem)  # two architectures


def test_refit_and_sequential_options_change_the_fold(selected_run, registry, tmp_path):
    raw, run_dir, _ = selected_run
    base = _records(run_dir)
    raw = {**raw, "aggregator": ["mean"], "selection": {"refit": True, "vectorise": False}}
    run_grid(parse_grid(raw), tmp_path / "run", registry, say=lambda m: None, progress=False)
    for record in _records(tmp_path / "run").values():
        sel = record["selection"]
        assert sel["refit"] and not any(t["vectorised"] for t in sel["training"])
        assert all(t["decoding"] == "one by one" for t in sel["training"])
        assert record["n_train"] > sel["validation"]["n_train"]
        twin = next(r for r in base.values() if r["fold"] == record["fold"] and len(r["selection"]["candidates"]) == 2)
        # trained and decoded one after the other, the candidates score what the vectorised ones scored
        scores = [c["validation"] for c in twin["selection"]["candidates"]]
        assert [c["validation"] for c in sel["candidates"]] == scores


def test_selection_resumes_at_the_fold_level(selected_run, registry):
    raw, run_dir, summary = selected_run
    again = run_grid(parse_grid(raw), run_dir, registry, say=lambda m: None, progress=False)
    assert again.folds_run == 0 and again.leaderboard == summary.leaderboard


def test_selection_inside_a_train_fraction_sweep(tiny_grid, registry, tmp_path):
    raw = _grid(tiny_grid, level="patch", train__lr={"select": LRS}, sweep={"train_fraction": [0.5, 1.0]})
    raw["dataset"]["videos"] = 12
    run_grid(parse_grid(raw), tmp_path / "run", registry, say=lambda m: None, progress=False)
    n = {r["selection"]["validation"]["n_train"] + r["selection"]["validation"]["n_validation"]
         for r in _records(tmp_path / "run").values()}
    assert len(n) == 2  # validation is carved from the subsampled training part


def test_the_grid_schema_offers_select_where_the_parser_takes_it():
    from benchkit.grid.config import Grid
    from benchkit.grid.selection import NOT_SELECTABLE

    train = Grid.model_json_schema()["$defs"]["TrainConfig"]["properties"]
    for key, prop in train.items():
        selectable = any(alt.get("required") == ["select"] for alt in prop.get("anyOf", []))
        assert selectable == (key not in NOT_SELECTABLE), key
    assert "SelectionConfig" in Grid.model_json_schema()["$defs"]


def test_every_shipped_grid_is_valid_under_the_schema():
    """The schema `benchkit schema` prints is for editors: it must accept every grid the parser accepts."""
    import glob

    jsonschema = pytest.importorskip("jsonschema")
    from benchkit.grid.config import Grid

    schema = Grid.model_json_schema()
    for path in sorted(glob.glob("benchmarks/*.yaml")):
        jsonschema.validate(yaml.safe_load(Path(path).read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "train": {"lr": {"select": []}}}, schema)
