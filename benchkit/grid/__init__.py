"""The grid layer: safe YAML loading, the pydantic schema and expansion into cells, planning against the registry."""
