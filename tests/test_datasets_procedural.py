"""The synthetic procedural dataset: shapes, determinism, grammar, learnability and order dependence."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
from benchkit_datasets.procedural_synthetic import ProceduralSynthetic, variant_order

from benchkit.errors import DataError
from benchkit.registry.interfaces import Dataset

TINY = dict(videos=6, dim=16)


@pytest.mark.parametrize(
    ("task", "kwargs", "shape", "n_targets", "classes"),
    [
        ("forecasting", {}, (6, 2, 16), 1, 12),
        ("classification", {}, (6, 2, 16), 1, 8),
        ("planning", {"horizon": 3}, (2, 1, 16), 3, 12),
        ("planning", {"horizon": 4}, (2, 1, 16), 4, 12),
        ("anticipation", {"length": 10, "observed": 4, "z": 4}, (4, 2, 16), 8, 4 + 4),
    ],
)
def test_shapes_targets_and_vocabulary(task, kwargs, shape, n_targets, classes):
    ds = ProceduralSynthetic(task=task, **TINY, **kwargs)
    assert isinstance(ds, Dataset) and ds.kind == "features"
    assert len(ds.vocabulary.actions) == classes
    for i in (0, len(ds) // 2, len(ds) - 1):
        x = ds.video(i)
        assert x.shape == shape and x.dtype == np.float32
        t = ds.targets(i)
        assert len(t) == n_targets and all(0 <= c < classes for c in t)
    assert len(ds.groups()) == len(ds) and set(ds.groups("split")) == {"train", "test"}


def test_deterministic_and_fingerprinted():
    a, b = ProceduralSynthetic(**TINY), ProceduralSynthetic(**TINY)
    assert a.fingerprint() == b.fingerprint() and len(a) == len(b)
    np.testing.assert_array_equal(a.video(7), b.video(7))
    assert [a.targets(i) for i in range(len(a))] == [b.targets(i) for i in range(len(b))]
    other = {ProceduralSynthetic(seed=1, **TINY).fingerprint(),
             ProceduralSynthetic(task="planning", **TINY).fingerprint()}
    assert a.fingerprint() not in other and len(other) == 2


def test_four_orders_of_one_step_set():
    assert variant_order([0, 1, 2, 3, 4], 0) == [0, 1, 2, 3, 4]
    assert variant_order([0, 1, 2, 3, 4], 1) == [1, 0, 3, 2, 4]
    assert variant_order([0, 1, 2, 3, 4], 2) == [4, 3, 2, 1, 0]
    assert variant_order([0, 1, 2, 3, 4], 3) == [4, 2, 3, 0, 1]
    ds = ProceduralSynthetic(tasks=8, **TINY)
    for group in (ds.orders[:4], ds.orders[4:]):
        assert len({tuple(sorted(o)) for o in group}) == 1 and len({tuple(o) for o in group}) == 4
    assert set(ds.orders[0]) & set(ds.orders[4])  # 8-step procedures from 12 steps: groups share steps


def test_grammar_noise_optional_and_swapped_steps():
    ds = ProceduralSynthetic(videos=20, dim=8, optional=0.3, swap=0.2)
    lengths = Counter(len(v.steps) for v in ds.videos)
    assert lengths[8] and min(lengths) < 8  # some videos skip optional steps
    canonical = sum(tuple(s.label for s in v.steps) == tuple(ds.orders[v.task]) for v in ds.videos)
    assert 0 < canonical < len(ds.videos)
    for v in ds.videos:
        labels = [s.label for s in v.steps]
        assert ds.orders[v.task][0] in labels and set(labels) <= set(ds.orders[v.task])  # the first is not optional
        assert all(a.end <= b.start for a, b in zip(v.steps, v.steps[1:], strict=False))


def test_nearest_prototype_recovers_steps():
    ds = ProceduralSynthetic(**TINY)
    spans = per_second = total = 0
    for v, video in enumerate(ds.videos):
        series = ds._series(v)
        for step in video.steps:
            chunk = series[int(step.start) : int(step.end)]
            spans += int(np.argmax(ds.prototypes @ chunk.mean(0)) == step.label)
            per_second += int((np.argmax(chunk @ ds.prototypes.T, axis=1) == step.label).sum())
            total += len(chunk)
    n_steps = sum(len(v.steps) for v in ds.videos)
    assert spans == n_steps and per_second / total > 0.9


def _decode(x, prototypes):
    """Observed clips → the sequence of distinct steps (nearest prototype per token, background dropped)."""
    labels = np.argmax(x.reshape(-1, x.shape[-1]) @ prototypes.T, axis=1)
    seq = []
    for c in labels:
        if c != len(prototypes) - 1 and (not seq or seq[-1] != c):
            seq.append(int(c))
    return seq


def _table_accuracy(keys, y, train):
    table, majority = defaultdict(Counter), Counter(y[train]).most_common(1)[0][0]
    for k, c, tr in zip(keys, y, train, strict=True):
        if tr:
            table[k][c] += 1
    pred = np.array([table[k].most_common(1)[0][0] if table[k] else majority for k in keys])
    return float((pred == y)[~train].mean())


def test_forecasting_needs_order():
    """The same last steps predict the next step far better in their order than as a set."""
    ds = ProceduralSynthetic(task="forecasting", videos=20, dim=16)
    seqs = [_decode(ds.video(i), ds.prototypes)[-3:] for i in range(len(ds))]
    y = np.array([ds.targets(i)[0] for i in range(len(ds))])
    train = np.array(ds.groups("split")) == "train"
    ordered = _table_accuracy([tuple(s) for s in seqs], y, train)
    as_set = _table_accuracy([frozenset(s) for s in seqs], y, train)
    assert ordered > 0.7 and ordered - as_set > 0.15


def _ridge_accuracy(x, y, train, lam=1.0):
    x = np.hstack([x, np.ones((len(x), 1))])
    onehot = np.eye(y.max() + 1)[y]
    w = np.linalg.solve(x[train].T @ x[train] + lam * np.eye(x.shape[1]), x[train].T @ onehot[train])
    return float((np.argmax(x[~train] @ w, axis=1) == y[~train]).mean())


@pytest.mark.parametrize(("task", "position", "margin"), [("classification", 0, 0.3), ("planning", 0, 0.1),
                                                           ("planning", 2, 0.2)])
def test_linear_readout_learns_and_order_blind_pooling_loses(task, position, margin):
    """Learnable from the observed clips, and mean pooling over clips (order-blind) is measurably worse."""
    ds = ProceduralSynthetic(task=task, videos=30, dim=16)
    x = np.stack([ds.video(i) for i in range(len(ds))])
    y = np.array([ds.targets(i)[position] for i in range(len(ds))])
    train = np.array(ds.groups("split")) == "train"
    ordered = _ridge_accuracy(x.reshape(len(x), -1), y, train)
    pooled = _ridge_accuracy(x.mean(axis=(1, 2)), y, train)
    assert ordered > 0.5 and ordered - pooled > margin


def test_anticipation_targets_are_interleaved_verb_noun_pairs():
    ds = ProceduralSynthetic(task="anticipation", length=10, observed=4, z=4, **TINY)
    verbs = ds.params["verbs"]
    for i in range(0, len(ds), 17):
        sample = ds.samples[i]
        steps = ds.videos[sample.video].steps
        first = next(j for j, s in enumerate(steps) if (s.start, s.end) == sample.spans[-1]) + 1
        expected = [c for s in steps[first : first + 4] for c in (s.verb, verbs + s.noun)]
        assert ds.targets(i) == expected
        assert ds.vocabulary.actions[expected[0]].startswith("verb")
        assert ds.vocabulary.actions[expected[1]].startswith("noun")


def test_groups_and_step_sequences():
    ds = ProceduralSynthetic(task="planning", **TINY)
    assert len(set(ds.groups("video"))) == len({s.video for s in ds.samples})
    assert set(ds.groups("task")) == {str(t) for t in range(8)}
    with pytest.raises(DataError, match="unknown grouping key 'take'"):
        ds.groups("take")
    first = ds.samples[0].video
    assert ds.step_sequences([0, 1]) == [[s.label for s in ds.videos[first].steps]]
    assert len(ds.step_sequences()) == len({s.video for s in ds.samples})


@pytest.mark.parametrize("kwargs", [{"length": 13}, {"verbs": 2, "nouns": 2}, {"task": "segmentation"},
                                    {"duration": (0, 2)}])
def test_bad_options_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        ProceduralSynthetic(**kwargs)
