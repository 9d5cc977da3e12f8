"""Hydra plugins of hpc-sweeper (Hydra finds plugins only under the hydra_plugins namespace)."""
