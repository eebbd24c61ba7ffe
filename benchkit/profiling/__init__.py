"""Profiles researchers can quote: parameters, FLOPs per phase, latency, memory and the environment, every figure
with its unit, convention and input shape (docs/profiling.md; issue 7).

- :func:`profile_composition` / :func:`build_composition`: one composition (``benchkit profile``);
- :func:`profile_cell`: one planned grid cell, for the grid's ``profile:`` section (:class:`ProfileOptions`);
- :func:`count_flops`, :func:`register_formula`, :func:`declare_free`, :func:`declare_attention`: the counter and
  its formula registry;
- :func:`render_markdown`: the table ``benchkit profile`` prints.
"""

from benchkit.profiling import _quiet  # noqa: F401  (first: see its docstring)
from benchkit.profiling.compose import Composition, build_composition, feature_spec_of
from benchkit.profiling.flops import FlopCount, count_flops
from benchkit.profiling.formulas import declare_attention, declare_free, register_formula
from benchkit.profiling.options import ProfileOptions
from benchkit.profiling.params import ParamRow, count, parameter_rows
from benchkit.profiling.profiler import CONVENTIONS, profile_cell, profile_composition
from benchkit.profiling.table import render_markdown

__all__ = [
    "CONVENTIONS",
    "Composition",
    "FlopCount",
    "ParamRow",
    "ProfileOptions",
    "build_composition",
    "count",
    "count_flops",
    "declare_attention",
    "declare_free",
    "feature_spec_of",
    "parameter_rows",
    "profile_cell",
    "profile_composition",
    "register_formula",
    "render_markdown",
]
