"""$dist: a benchkit plugin package (see docs/plugins.md in benchkit)."""
