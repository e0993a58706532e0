"""CTR model families built from shared layers, and their registry."""
