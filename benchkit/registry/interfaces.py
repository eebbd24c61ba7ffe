"""The interfaces the core relies on; every plugin kind meets one of these. Plugins import them from
``benchkit.api``.

- dataset factory ``(**kwargs) -> Dataset``
- backbone factory ``(**kwargs) -> Backbone``
- aggregator factory ``(spec: FeatureSpec, **kwargs) -> Aggregator`` mapping tokens to ``(B, K, out_dim)``
- predictor factory ``(spec: PredictorSpec, **kwargs) -> Predictor``
- metric function ``(predictions, references, **kwargs) -> float``: a ``Metric``
- executor factory ``(**kwargs) -> Executor`` running folds in-process, in worker processes or on a cluster

Optional capabilities, which the core looks for on a plugin's object (``hasattr``) and uses when a grid asks:
``LogitsPredictor`` (``decode.viterbi``), ``CandidatesPredictor`` (``decode.candidates``),
``GreedyTokensPredictor`` (hyper-parameter candidates decoded together), ``ReferencePredictor``
(``benchkit profile --reference``), ``StepSequences`` (a dataset's training transitions for
Viterbi decoding) and ``HasComponents`` (parameter rows per part in profiles).

Nothing here imports torch or numpy at run time: importing the interfaces is free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from benchkit.sequence.vocabulary import Vocabulary

Level = Literal["frame", "patch"]
LEVELS: tuple[str, ...] = ("frame", "patch")


@dataclass(frozen=True)
class Features:
    """A backbone's output for a batch of videos.

    ``frame``: one token per frame ``(B, T, D)`` (CLS or pooled output); ``patch``: ``(B, T, P, D)`` patch tokens
    laid out row-major on ``grid = (h, w)`` with ``h * w == P``.
    """

    frame: torch.Tensor
    patch: torch.Tensor
    grid: tuple[int, int]


@dataclass(frozen=True)
class FeatureSpec:
    """What an aggregator is built for: the embedding level and the token shape it will receive."""

    level: str
    dim: int
    frames: int
    grid: tuple[int, int]

    @property
    def patches(self) -> int:
        return self.grid[0] * self.grid[1]


@dataclass(frozen=True)
class PredictorSpec:
    """What a predictor is built for: ``prefix_tokens`` tokens of width ``prefix_dim`` and a target vocabulary."""

    prefix_dim: int
    prefix_tokens: int
    vocabulary: Vocabulary
    max_len: int  # longest target sequence in tokens, BOS and EOS included


@runtime_checkable
class Dataset(Protocol):
    """Windows of video with their action sequences and a grouping key for cross-validation.

    A *feature dataset* sets ``kind = "features"``: its ``video(i)`` is not frames but precomputed clip embeddings,
    float32 ``(C, k, E)`` (C observed clips of k tokens of width E, the same shape for every sample), which the
    ``precomputed`` backbone passes through as ``Features(frame = mean over k, patch = the k tokens, grid = (1, k))``
    (the procedural datasets, docs/procedural.md). Datasets without ``kind`` deliver frames.
    """

    vocabulary: Vocabulary

    def __len__(self) -> int: ...

    def fingerprint(self) -> str:
        """Identity of the data (source, version, sampling, frames): part of the feature-cache key."""
        ...

    def video(self, index: int) -> np.ndarray:
        """Frames ``(T, H, W, 3)`` uint8; for a feature dataset, clip embeddings ``(C, k, E)`` float32."""
        ...

    def targets(self, index: int) -> list[int]:
        """Action indices (0-based, into ``vocabulary.actions``); a procedural task's n classes (docs/procedural.md:
        1 for step forecasting and task classification, T for planning, Z interleaved (verb, noun) pairs for
        long-term anticipation)."""
        ...

    def groups(self, key: str | None = None) -> Sequence[str]:
        """One grouping value per sample (e.g. video id); no group may span train and test."""
        ...


@runtime_checkable
class Backbone(Protocol):
    """A frozen encoder: videos in, frame and patch tokens out."""

    def fingerprint(self) -> str:
        """Identity of weights and preprocessing: part of the feature-cache key."""
        ...

    def encode(self, videos: torch.Tensor) -> Features:
        """``videos``: ``(B, T, H, W, 3)`` uint8."""
        ...


@runtime_checkable
class Predictor(Protocol):
    """Turns prefix tokens into a token sequence; trained with ``loss``, evaluated with ``predict``."""

    def loss(self, prefix: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``prefix`` ``(B, K, prefix_dim)``; ``tokens`` ``(B, L)`` = BOS, targets, EOS, right-padded with PAD."""
        ...

    def predict(self, prefix: torch.Tensor) -> list[list[int]]:
        """Greedy token ids per sample, up to and including EOS when produced."""
        ...


@runtime_checkable
class Aggregator(Protocol):
    """An ``nn.Module`` from ``factory(spec: FeatureSpec, **kwargs)``: tokens ``(B, T, D)`` (frame level) or
    ``(B, T, P, D)`` (patch level, ``P = spec.patches``) → ``(B, num_tokens, out_dim)`` prefix tokens."""

    num_tokens: int
    out_dim: int

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Metric(Protocol):
    """``fn(predictions, references, **kwargs) -> float``: one fold's score over per-sample sequences (action
    indices, or names for metrics registered with ``tokens="names"``); registered with ``higher_is_better``."""

    def __call__(self, predictions: Sequence[Sequence[Any]], references: Sequence[Sequence[Any]], /,
                 **kwargs: Any) -> float: ...


@runtime_checkable
class LogitsPredictor(Protocol):
    """A predictor with per-slot scores, which ``decode.viterbi`` decodes over training transitions."""

    def logits(self, prefix: torch.Tensor) -> torch.Tensor:
        """``(B, T, A)`` unnormalised scores of the ``A`` actions at each of ``T`` target slots."""
        ...


@runtime_checkable
class CandidatesPredictor(Protocol):
    """A predictor that samples several sequences per sample (``decode.candidates: K``, Ego4D's ED@Z)."""

    def candidates(self, prefix: torch.Tensor, k: int) -> list[list[list[int]]]:
        """``k`` token sequences per sample, each as ``predict`` returns one."""
        ...


@runtime_checkable
class GreedyTokensPredictor(Protocol):
    """A predictor whose greedy decoding is also one tensor function, which ``torch.func.vmap`` runs over the K
    hyper-parameter candidates of a cell at once (selection decodes them together; without it, one by one)."""

    def greedy_tokens(self, prefix: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` greedy token ids of a fixed length, no data-dependent control flow; each row cut after its
        first EOS (:func:`benchkit.api.until_eos`) is ``predict``'s."""
        ...


@runtime_checkable
class ReferencePredictor(Protocol):
    """A predictor with a reference decoding loop (no KV cache), profiled beside ``predict`` when present."""

    def predict_reference(self, prefix: torch.Tensor) -> list[list[int]]: ...


@runtime_checkable
class StepSequences(Protocol):
    """A dataset whose videos have step sequences: Viterbi decoding counts the training videos' transitions. An
    optional ``transition_smoothing: float`` (default 0) is added to every count (COIN: 1)."""

    def step_sequences(self, indices: Sequence[int] | None = None) -> list[list[int]]:
        """The step-class sequence of every video the samples ``indices`` come from, each video once."""
        ...


@runtime_checkable
class HasComponents(Protocol):
    """A model that names its parts (InvPatch's merge / cct / frame_vit): profiles count their parameters too."""

    def components(self) -> Mapping[str, nn.Module]: ...


@runtime_checkable
class Executor(Protocol):
    """Runs units of work (a grid's folds) and yields their results as they complete, in any order.

    ``in_process`` executors receive the driver's own fold runner (no pickling; in-process plugins and registries
    work); the others receive a picklable callable that rebuilds the runner in the worker
    (``benchkit.run.folds.RemoteFolds``). ``work`` never raises for a failing unit: failures come back as results.
    """

    in_process: bool

    def map_unordered(self, work: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]: ...

    def close(self, cancel: bool = False) -> None:
        """Release workers; ``cancel`` drops queued work (Ctrl-C, ``fail_fast``)."""
        ...
