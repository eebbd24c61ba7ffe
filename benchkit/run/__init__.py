"""The run layer: folds as units of work; the driver that plans, dispatches and stores; the run directory, the
feature cache and verified files; scoring, baselines, summaries and provenance."""
