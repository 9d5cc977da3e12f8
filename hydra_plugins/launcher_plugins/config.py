"""Registers the `slurm` and `local` launchers' settings (sweeper/launching/settings.py) with Hydra
as `hydra/launcher=slurm` and `hydra/launcher=local`."""
from hydra.core.config_store import ConfigStore

from sweeper.launching.settings import LocalConf, SlurmConf

ConfigStore.instance().store(group="hydra/launcher", name="slurm", node=SlurmConf, provider="hpc-sweeper")
ConfigStore.instance().store(group="hydra/launcher", name="local", node=LocalConf, provider="hpc-sweeper")
