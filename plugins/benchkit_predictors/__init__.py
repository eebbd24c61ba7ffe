"""First-party benchkit predictors; each module is one plugin, registered through the `benchkit` entry-point group."""
