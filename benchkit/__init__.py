"""benchkit: a plugin-registry benchmark toolkit for frozen-backbone video models."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # lazy, so that ``import benchkit`` stays light (no pandas, no torch)
    if name == "load_results":
        from benchkit.report.frame import load_results

        return load_results
    raise AttributeError(f"module 'benchkit' has no attribute {name!r}")
