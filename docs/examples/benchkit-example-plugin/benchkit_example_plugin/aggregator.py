"""``example-maxmean``: the max and the mean over every token, as two prefix tokens."""

import torch

from benchkit.api import hookimpl


class MaxMean(torch.nn.Module):
    """Max and mean over every token → two prefix tokens."""

    num_tokens = 2

    def __init__(self, spec, scale: float = 1.0):
        super().__init__()
        self.out_dim, self.scale = spec.dim, scale

    def forward(self, x):  # (B, T, D) at the frame level, (B, T, P, D) at the patch level
        x = x.flatten(1, -2)
        return self.scale * torch.stack([x.amax(dim=1), x.mean(dim=1)], dim=1)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("example-maxmean", MaxMean, levels=("frame", "patch"))
