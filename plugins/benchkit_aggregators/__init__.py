"""First-party benchkit aggregators; each module is one plugin, registered through the `benchkit` entry-point group."""
