"""First-party benchkit backbones; each module is one plugin, registered through the `benchkit` entry-point group."""
