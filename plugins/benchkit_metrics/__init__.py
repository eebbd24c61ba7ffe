"""First-party benchkit metrics; each module is one plugin, registered through the `benchkit` entry-point group."""
