"""``$short-flicker``: clips of noise, each bright or dark; the target is that one action. Seeded, instant, CPU."""

import numpy as np

from benchkit.api import Vocabulary, hookimpl


class Flicker:
    """Noise clips, each bright or dark: one action per clip."""

    vocabulary = Vocabulary(("dark", "bright"))

    def __init__(self, clips: int = 24, frames: int = 4, size: int = 16, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 2, clips)
        noise = rng.integers(0, 128, (clips, frames, size, size, 3))
        self.clips = (noise + 127 * self.labels[:, None, None, None, None]).astype(np.uint8)
        self.key = f"$short-flicker-v1:{clips}:{frames}:{size}:{seed}"

    def __len__(self):
        return len(self.clips)

    def fingerprint(self):  # part of the feature-cache key: change it whenever the data changes
        return self.key

    def video(self, i):  # (T, H, W, 3) uint8
        return self.clips[i]

    def targets(self, i):  # action indices into vocabulary.actions
        return [int(self.labels[i])]

    def groups(self, key=None):  # no group spans train and test: one group per clip
        return [f"clip-{i}" for i in range(len(self))]


@hookimpl
def benchkit_register(registry):
    registry.dataset("$short-flicker", Flicker)
