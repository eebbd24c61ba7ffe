"""The real procedural datasets over precomputed features (spec vedit.md §3; layouts in docs/procedural.md).

``coin``, ``crosstask``, ``niv`` (step forecasting, task classification, procedure planning) and ``ego4d-lta``
(long-term anticipation). Each reads the public annotations in their own format (``coin.py``, ``crosstask.py``,
``niv.py``, ``ego4d_lta.py``) and one feature file per video; samples are ``(C, k, E)`` float32 clips
(``kind = "features"``) for the ``precomputed`` backbone.
"""

from __future__ import annotations

from benchkit.api import hookimpl
from benchkit_datasets._coin import coin
from benchkit_datasets._crosstask import crosstask
from benchkit_datasets._ego4d_lta import ego4d_lta
from benchkit_datasets._niv import niv

PATHS = ("root", "features")


@hookimpl
def benchkit_register(registry):
    registry.dataset("coin", coin, paths=PATHS, task="procedural")
    registry.dataset(
        "crosstask", crosstask, paths=(*PATHS, "train_list", "test_list", "action_index"), task="procedural"
    )
    registry.dataset("niv", niv, paths=(*PATHS, "train_file", "test_file"), task="procedural")
    registry.dataset("ego4d-lta", ego4d_lta, paths=PATHS, task="procedural")
