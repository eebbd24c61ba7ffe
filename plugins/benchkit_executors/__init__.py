"""First-party executors: where a grid's folds run (docs/scaling.md)."""
