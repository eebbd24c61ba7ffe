"""The storage layer: the run directory (atomic, locked, checksummed records), the content-addressed feature
cache, and the verified reads that move damage aside (docs/reliability.md)."""
