import torch

from benchkit.api import hookimpl


class StdPool(torch.nn.Module):
    """Standard deviation over every token: one prefix token (motion shows as spread)."""

    def __init__(self, spec):
        super().__init__()
        self.num_tokens, self.out_dim = 1, spec.dim

    def forward(self, x):  # (B, T, D) at the frame level, (B, T, P, D) at the patch level
        return x.flatten(1, -2).std(dim=1, keepdim=True)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("std-pool", StdPool)
