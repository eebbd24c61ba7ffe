"""``procedural-synthetic``: procedures generated from step grammars, the CPU default of the VEDiT tasks.

Grammar (docs/procedural.md): ``tasks`` procedures in groups of four that share one ordered set of ``length``
steps drawn from a pool of ``steps`` (so steps recur across groups too) and differ only in order: the base order
``P``, ``P`` with adjacent pairs swapped, ``P`` reversed, and the swapped order reversed. A video of a procedure
follows its order with grammar noise: each step after the first is optional (skipped with probability
``optional``) and an adjacent pair is swapped with probability ``swap``. Each step lasts ``duration`` seconds
(uniform integers), with ``gap`` seconds of background between steps; every second gets one ``dim``-d feature, the
step's unit-norm prototype (background: its own prototype) plus Gaussian noise of norm about ``noise``.

So every task is learnable (a nearest-prototype rule recovers the steps), and order carries information that the
set of steps does not: within a group, the same steps precede different next steps (forecasting), the same
start and goal states swap roles (planning), and the four procedures have the same steps (classification). A model
that pools the observed clips without order is capped well below one that keeps it. Steps also map to distinct
(verb, noun) pairs for ``anticipation``. The samples come from the same protocols as the real datasets
(``procedural_protocols.py``) on the generated series; videos ``i % 5 == 4`` of each procedure form the ``test``
split (grouping key ``split``).
"""

from __future__ import annotations

import numpy as np

from benchkit.api import hookimpl
from benchkit_datasets._procedural_dataset import Names, ProceduralFeatures
from benchkit_datasets._procedural_protocols import Protocol, Step, Video

GENERATOR_VERSION = 1
ORDERS = ("base", "pair-swapped", "reversed", "pair-swapped reversed")


def variant_order(base: list[int], variant: int) -> list[int]:
    """``base`` in one of the four ``ORDERS``."""
    order = list(base)
    if variant in (1, 3):
        for i in range(0, len(order) - 1, 2):
            order[i], order[i + 1] = order[i + 1], order[i]
    return order[::-1] if variant >= 2 else order


class ProceduralSynthetic(ProceduralFeatures):
    """Procedures from step grammars (one step set in four orders): forecasting, classification, planning, LTA."""

    def __init__(
        self,
        task: str = "forecasting",
        tasks: int = 8,
        steps: int = 12,
        length: int = 8,
        videos: int = 20,
        dim: int = 32,
        noise: float = 0.5,
        optional: float = 0.1,
        swap: float = 0.05,
        duration: tuple[int, int] = (2, 4),
        gap: tuple[int, int] = (0, 1),
        horizon: int = 3,
        history: float = 12.0,
        clips: int = 6,
        tokens: int = 2,
        observed: int = 4,
        z: int = 4,
        verbs: int = 4,
        nouns: int = 4,
        seed: int = 0,
    ) -> None:
        if not 2 <= length <= steps:
            raise ValueError(f"length must be between 2 and steps ({steps}), got {length}")
        if tasks < 1 or videos < 1 or dim < 1:
            raise ValueError("tasks, videos and dim must be >= 1")
        if verbs * nouns < steps:
            raise ValueError(f"verbs x nouns ({verbs * nouns}) must be >= steps ({steps}): each step is a pair")
        if not (1 <= duration[0] <= duration[1] and 0 <= gap[0] <= gap[1]):
            raise ValueError("duration needs 1 <= low <= high seconds and gap 0 <= low <= high")
        self.params = dict(tasks=tasks, steps=steps, length=length, videos=videos, dim=dim, noise=noise,
                           optional=optional, swap=swap, duration=list(duration), gap=list(gap), verbs=verbs,
                           nouns=nouns, seed=seed)
        rng = np.random.default_rng(seed)
        protos = rng.normal(size=(steps + 1, dim))
        self.prototypes = (protos / np.linalg.norm(protos, axis=1, keepdims=True)).astype(np.float32)
        pairs = rng.permutation(verbs * nouns)[:steps]
        self.pairs = [(int(p) // nouns, int(p) % nouns) for p in pairs]
        bases = [list(map(int, rng.choice(steps, size=length, replace=False))) for _ in range((tasks + 3) // 4)]
        self.orders = [variant_order(bases[t // 4], t % 4) for t in range(tasks)]
        all_videos, series = [], []
        for t in range(tasks):
            for i in range(videos):
                video, features = self._video(rng, t, i)
                all_videos.append(video)
                series.append(features)
        names = Names(
            steps=tuple(f"step {s}" for s in range(steps)),
            tasks=tuple(f"procedure {t} ({ORDERS[t % 4]})" for t in range(tasks)),
            verbs=tuple(f"verb {v}" for v in range(verbs)),
            nouns=tuple(f"noun {n}" for n in range(nouns)),
        )
        protocol = Protocol(task=task, horizon=horizon, history=history, clips=clips, tokens=tokens,
                            observed=observed, z=z)
        super().__init__(
            "procedural-synthetic", all_videos, names, protocol, series.__getitem__, [len(s) for s in series],
            identity=lambda: {"generator": GENERATOR_VERSION, **self.params},
        )

    def _video(self, rng: np.random.Generator, task: int, index: int) -> tuple[Video, np.ndarray]:
        p = self.params
        order = [s for j, s in enumerate(self.orders[task]) if j == 0 or rng.random() >= p["optional"]]
        j = 0
        while j < len(order) - 1:
            if rng.random() < p["swap"]:
                order[j], order[j + 1] = order[j + 1], order[j]
                j += 1
            j += 1
        t = int(rng.integers(p["gap"][0], p["gap"][1] + 1))
        steps = []
        for s in order:
            d = int(rng.integers(p["duration"][0], p["duration"][1] + 1))
            verb, noun = self.pairs[s]
            steps.append(Step(s, float(t), float(t + d), verb, noun))
            t += d + int(rng.integers(p["gap"][0], p["gap"][1] + 1))
        labels = np.full(t + 1, p["steps"], dtype=np.int64)  # background, and one trailing second
        for step in steps:
            labels[int(step.start) : int(step.end)] = step.label
        noise = rng.normal(scale=p["noise"] / np.sqrt(p["dim"]), size=(len(labels), p["dim"]))
        features = (self.prototypes[labels] + noise).astype(np.float32)
        split = "test" if index % 5 == 4 else "train"
        return Video(f"procedure-{task:03d}-video-{index:04d}", task, tuple(steps), split), features


@hookimpl
def benchkit_register(registry):
    registry.dataset("procedural-synthetic", ProceduralSynthetic, task="procedural")
