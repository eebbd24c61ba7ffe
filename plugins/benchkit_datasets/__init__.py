"""First-party benchkit datasets; each module is one plugin, registered through the `benchkit` entry-point group."""
