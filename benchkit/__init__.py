"""benchkit: a plugin-registry benchmark toolkit for frozen-backbone video models."""

__version__ = "0.1.0"
