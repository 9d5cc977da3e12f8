"""Repeats: `repeats=N` runs each configuration of a grid with N seeds.

A configuration is a job's config less its seed. `repeats` (conf/config.yaml: 1; a preset may set
it) becomes the grid's first axis, `seed=S,S+1,...,S+N-1` from the config's seed S. First, so that
a sweep run again with more repeats keeps its job numbers (the new seeds' jobs come after) and the
jobs of one seed come together. The fused loop trains the jobs of one seed as one (sweeper/job/fused_groups.py);
repeats, differing in their seed, train apart: a fused group's copies share their batches, and a
repeat must draw its own data order. A list of seeds given by hand (`seed=0,1,2`) is repeats too.
"""
from __future__ import annotations

from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from sweeper.hparams import applicable_hparams
from sweeper.errors import refuse
from sweeper.refusals import check_reads_seed

REPEATS = "repeats"
SEED = "seed"


def repeats_of(config: DictConfig) -> int:
    """The config's `repeats`, checked: an integer >= 1 (refused in one line otherwise)."""
    value = OmegaConf.select(config, REPEATS, default=1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        refuse(f"repeats={value!r}: give the number of seeds per configuration, an integer >= 1 (e.g. repeats=5)")
    return value


def seeds(config: DictConfig) -> list[int]:
    """The seeds `repeats` gives each configuration: the config's seed and the next ones."""
    first = OmegaConf.select(config, SEED, default=0)
    return list(range(first, first + repeats_of(config)))


def with_seed_axis(arguments: Sequence[str], parsed: Sequence[Any], config: DictConfig) -> list[str]:
    """A grid's overrides (`arguments`, parsed by Hydra as `parsed`) with `repeats` made the seed
    axis, first; as they are where repeats is 1. A list of seeds and repeats together are refused."""
    if repeats_of(config) == 1:
        return list(arguments)
    if not any(o.get_key_element() == "task" and o.is_sweep_override() for o in parsed):  # the config's task is the jobs'
        check_reads_seed(config, list(applicable_hparams(config)))
    given = [o for o in parsed if o.get_key_element() == SEED]
    if any(o.is_sweep_override() for o in given):
        listed = next(o.input_line for o in given if o.is_sweep_override())
        refuse(f"repeats={repeats_of(config)} and {listed} both give the seeds: keep one "
               f"(repeats=N runs seeds seed, seed+1, ...; seed=3 repeats=2 runs 3 and 4)")
    # `repeats=N` leaves the jobs' overrides: a job is one run, its seed tells it apart
    rest = [argument for argument, o in zip(arguments, parsed) if o.get_key_element() not in (SEED, REPEATS)]
    return [f"{SEED}={','.join(map(str, seeds(config)))}", *rest]
