"""First-party logger plugins (end-of-cell hooks)."""
