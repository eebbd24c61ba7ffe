"""``lstm``: recurrent aggregation → one prefix token; the architecture follows ``spec.level``
(spec invpatch.md §3).

Frame level (reference ``StackedBiLSTMClassifier`` in ``models/merging_blocks.py``): ``Linear(D, D)`` → 2-layer
bidirectional ``nn.LSTM`` with hidden 2048 over the T frame tokens → concatenation of the last layer's final
forward and backward hidden states (4096) → ``Linear(4096, out_dim)``. ≈150.6M parameters at D = 768.

Patch level (**[inferred]**; the paper: "LSTMs applied first across the temporal dimension of each patch,
followed by mean pooling across the spatial dimension"): one recurrent net, weights shared by all patches, runs
over T on each patch's tokens; its last layer's final hidden state is averaged over the patches and projected with
``Linear(hidden, out_dim)``. The reference builds ``GRUAggregator(d_model=prefix_size, T=T)`` for this row but the
class is missing from the public code, so its hidden size and depth cannot be read; the defaults here follow what
the call pins down — hidden = ``d_model`` (= D), one layer, one direction, no input projection. ``cell`` picks the
unit: ``"lstm"`` (default, the paper's word) or ``"gru"`` (the reference's class name). ≈5.3M parameters at D = 768.

Every default (``hidden_size``, ``num_layers``, ``bidirectional``, ``input_proj``) is ``None`` = the level's
value above; ``cell`` applies to both levels.
"""

from __future__ import annotations

import torch
from torch import nn

from benchkit.api import FeatureSpec, hookimpl

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentAggregator(nn.Module):
    """Frame level: (projected) frame tokens through a stacked RNN. Patch level: a shared RNN per patch tube."""

    num_tokens = 1

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        hidden_size: int | None = None,
        num_layers: int | None = None,
        bidirectional: bool | None = None,
        input_proj: bool | None = None,
        cell: str = "lstm",
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {tuple(CELLS)}, not {cell!r}")
        frame = spec.level == "frame"
        self.level = spec.level
        self.out_dim = out_dim or spec.dim
        hidden_size = hidden_size or (2048 if frame else spec.dim)
        num_layers = num_layers or (2 if frame else 1)
        self.bidirectional = frame if bidirectional is None else bidirectional
        use_proj = frame if input_proj is None else input_proj
        self.input_proj = nn.Linear(spec.dim, spec.dim) if use_proj else nn.Identity()
        self.rnn = CELLS[cell](
            spec.dim, hidden_size, num_layers=num_layers, bidirectional=self.bidirectional, batch_first=True
        )
        self.head = nn.Linear(hidden_size * (2 if self.bidirectional else 1), self.out_dim)

    def _final_hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """``(N, T, D)`` sequences → ``(N, directions * hidden)``: the last layer's final state, forward first."""
        _, state = self.rnn(seq)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers * directions, N, hidden)
        last = h_n[-2:] if self.bidirectional else h_n[-1:]
        return torch.cat(tuple(last), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_proj(x)
        if self.level == "frame":
            pooled = self._final_hidden(x)
        else:
            b, t, p, d = x.shape
            tubes = x.permute(0, 2, 1, 3).reshape(b * p, t, d)
            pooled = self._final_hidden(tubes).view(b, p, -1).mean(dim=1)
        return self.head(pooled).unsqueeze(1)


@hookimpl
def benchkit_register(registry):
    registry.aggregator("lstm", RecurrentAggregator, levels=("frame", "patch"))
