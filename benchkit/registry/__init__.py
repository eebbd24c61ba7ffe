"""The registry layer: hook specifications, plugin loading (lazy, from package metadata), and the
interfaces plugins meet."""
