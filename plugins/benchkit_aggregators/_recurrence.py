"""An LSTM or GRU written out step by step, for ``torch.func.vmap``: the fused ``aten::lstm`` / ``aten::gru`` kernels
have no batching rule, so candidates trained together (hyper-parameter selection, benchkit/learn/together.py)
run the recurrence through this function instead. Same equations, gate order and weights as ``nn.LSTM`` /
``nn.GRU`` (batch_first, any depth, bidirectional); equal to the fused kernels up to float rounding
(tests/test_selection.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def vmapped(weight: torch.Tensor) -> bool:
    """Whether ``weight`` is a per-candidate weight inside ``torch.func.vmap``."""
    return torch._C._functorch.is_batchedtensor(weight)


def unrolled_final_hidden(rnn: nn.LSTM | nn.GRU, seq: torch.Tensor) -> torch.Tensor:
    """``h_n`` of ``rnn(seq)`` (``(layers * directions, N, hidden)``) for a batch-first ``seq`` of ``(N, T, D)``.

    Dropout between layers and LSTM projections are not written out: such a net raises ``NotImplementedError``
    and its candidates train one after the other."""
    if rnn.proj_size if isinstance(rnn, nn.LSTM) else False:
        raise NotImplementedError("an LSTM with proj_size has no unrolled form")
    if rnn.dropout and rnn.training and rnn.num_layers > 1:
        raise NotImplementedError("dropout between recurrent layers has no unrolled form")
    gru = isinstance(rnn, nn.GRU)
    n, steps = seq.shape[0], seq.shape[1]
    layer_input, finals = seq, []
    for layer in range(rnn.num_layers):
        outputs = []
        for direction in range(2 if rnn.bidirectional else 1):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            w_ih, w_hh = getattr(rnn, "weight_ih" + suffix), getattr(rnn, "weight_hh" + suffix)
            b_ih = getattr(rnn, "bias_ih" + suffix) if rnn.bias else None
            b_hh = getattr(rnn, "bias_hh" + suffix) if rnn.bias else None
            gates_x = F.linear(layer_input, w_ih, b_ih)  # (N, T, gates * hidden)
            h = seq.new_zeros(n, rnn.hidden_size)
            c = h
            out: list[torch.Tensor] = [h] * steps
            for t in reversed(range(steps)) if direction else range(steps):
                gates_h = F.linear(h, w_hh, b_hh)
                if gru:
                    xr, xz, xn = gates_x[:, t].chunk(3, dim=-1)
                    hr, hz, hn = gates_h.chunk(3, dim=-1)
                    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                    h = (1 - z) * torch.tanh(xn + r * hn) + z * h
                else:
                    i, f, g, o = (gates_x[:, t] + gates_h).chunk(4, dim=-1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                out[t] = h
            outputs.append(torch.stack(out, dim=1))
            finals.append(h)
        layer_input = torch.cat(outputs, dim=-1)
    return torch.stack(finals)
