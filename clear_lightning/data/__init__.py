"""Data: the CLEAR/TOFU contract, loaders and the synthetic CLEAR-mini generator."""
