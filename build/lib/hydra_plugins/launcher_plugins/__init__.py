"""Hydra launchers of hpc-sweeper: `slurm` and `local` (submitit, per-job resources)."""
