"""The one entry point: `python run.py [-m] [group=option] [key=value ...]` (see README)."""
import sys

import hydra
from omegaconf import DictConfig

from sweeper import run_job
from sweeper.refusals import check_argv


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_job(cfg)


if __name__ == "__main__":
    check_argv(sys.argv[1:])  # a misspelt key: the nearest known one, before Hydra's error
    main()
