"""`python -m sweeper course PROFILE`: run every sweep of the course, then write its report.

A profile (`course_profiles/<profile>.yaml`) is a list of sweeps, each a preset and the overrides that
size it. Each sweep is `python run.py -m experiment=<preset> <overrides> <user overrides>` into
`DIR/<name>`, a process of its own (TensorFlow splits the CPU into logical devices only before it
starts, and exercise 4 needs that); run again, a sweep skips its finished jobs (the fingerprints)
and runs the rest. The report (sweeper/report/course_report.py) is written from whatever is there.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from sweeper.errors import BadInput
from sweeper.hydra_private import grid_of
from sweeper.paths import conf_dir
from sweeper.sweep.repeats import with_seed_axis
from sweeper.words import command as shell_command

ROOT = Path(__file__).resolve().parents[1]
PROFILE_DIR = ROOT / "course_profiles"  # not under conf/: Hydra would list them as a config group
ENTRY_POINT = ROOT / "run.py"
EXERCISES = ("ex1", "ex2", "ex3_1epoch", "ex3_40epochs", "ex4")  # the published data file's keys


class ProfileError(BadInput):
    """A profile that cannot be used; the message is one line naming the file and the fix."""


@dataclasses.dataclass(frozen=True)
class CourseSweep:
    name: str              # its directory under the course directory
    exercise: str          # which published table its jobs answer (sweeper/report/published.yaml)
    preset: str            # conf/experiment/<preset>.yaml
    overrides: list[str]   # what sizes it (a subset of the grid, fewer images or epochs)


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str
    overrides: list[str]   # given to every sweep of the profile, before the user's
    sweeps: list[CourseSweep]


def profiles() -> list[str]:
    return sorted(path.stem for path in PROFILE_DIR.glob("*.yaml"))


def _sweep(path: Path, index: int, node: object) -> CourseSweep:
    where = f"{path}: sweep {index + 1}"
    if not isinstance(node, dict) or "preset" not in node or "exercise" not in node:
        raise ProfileError(f"{where}: each sweep needs `preset` and `exercise` (e.g. {{preset: ex1_gd, exercise: ex1}})")
    preset = str(node["preset"])
    if not (conf_dir() / "experiment" / f"{preset}.yaml").exists():
        raise ProfileError(f"{where}: no preset {preset!r} in conf/experiment/")
    overrides = node.get("overrides") or []
    if not isinstance(overrides, list):
        raise ProfileError(f"{where}: `overrides` must be a list of key=value strings")
    overrides = [str(o) for o in overrides]
    check_overrides(overrides, where)
    return CourseSweep(str(node.get("name", preset)), str(node["exercise"]), preset, overrides)


def check_overrides(overrides: list[str], where: str) -> None:
    """Hydra's parse of each override, before anything runs: ValueError (one line) at the first bad one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as e:
            said = [line for line in str(e).splitlines() if line.strip() and not line.startswith(("See ", "Error parsing"))]
            first = said[0] if said else "not an override"
            raise ProfileError(f"{where}: {override!r} is not a Hydra override ({first}): write key=value, "
                               "quoting a list such as \"lr=0.1,0.01\"") from None


def load_profile(name: str) -> Profile:
    """The profile course_profiles/<name>.yaml; ProfileError (one line) when it is unknown or malformed."""
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.exists():
        raise ProfileError(f"no course profile {name!r}: choose one of {', '.join(profiles())} (course_profiles/)")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if not isinstance(data, dict) or not isinstance(data.get("sweeps"), list) or not data["sweeps"]:
        raise ProfileError(f"{path}: a profile needs `sweeps:`, a list of {{name, exercise, preset, overrides}}")
    sweeps = [_sweep(path, i, node) for i, node in enumerate(data["sweeps"])]
    names = [s.name for s in sweeps]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ProfileError(f"{path}: sweep name {doubled[0]!r} is used twice: give each sweep its own `name`")
    shared = [str(o) for o in data.get("overrides") or []]
    check_overrides(shared, f"{path}: overrides")
    return Profile(name, str(data.get("description", "")), shared, sweeps)


_LAUNCHER = ("hydra/launcher=", "hydra.launcher.")


def _given(profile: Profile, sweep: CourseSweep, extra: list[str]) -> list[str]:
    """The sweep's, the profile's and the user's overrides. A launcher the user chooses replaces the
    profile's launcher settings whole (the local launcher's max_parallel means nothing to Slurm's)."""
    own = [*sweep.overrides, *profile.overrides]
    if any(o.lstrip("+~").startswith("hydra/launcher=") for o in extra):
        own = [o for o in own if not o.lstrip("+~").startswith(_LAUNCHER)]
    return [*own, *extra]


def sweep_command(profile: Profile, sweep: CourseSweep, directory: Path, extra: list[str]) -> list[str]:
    """The multirun of one sweep: its preset, its sizing, the profile's and the user's overrides."""
    return [sys.executable, str(ENTRY_POINT), "-m", f"experiment={sweep.preset}", *_given(profile, sweep, extra),
            f"hydra.sweep.dir={(directory / sweep.name).resolve()}"]


def planned_jobs(profile: Profile, sweep: CourseSweep, extra: list[str]) -> list[list[str]]:
    """The jobs the sweep will run, each as its overrides, without running anything: the preset
    composed through Hydra and its grid expanded as Hydra's sweeper expands it (the command line's
    values win over the preset's)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    given = _given(profile, sweep, extra)
    plain = [o for o, parsed in zip(given, parser.parse_overrides(given)) if not parsed.is_sweep_override()]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={sweep.preset}", *plain], return_hydra_config=True)
    GlobalHydra.instance().clear()
    params = [f"{key}={value}" for key, value in (cfg.hydra.sweeper.get("params") or {}).items()]
    arguments = with_seed_axis(params + given, parser.parse_overrides(params + given), cfg)  # repeats: as the grid does
    batches = grid_of(parser.parse_overrides(arguments))
    return [list(job) for batch in batches for job in batch]


def run_course(profile: Profile, directory: Path, extra: list[str]) -> int:
    """Run each sweep in turn. A refused command (exit 2: a bad override) stops the course before
    the next sweep; a sweep whose jobs failed does not (its report rows say so). Returns 2, 1 when
    a sweep had failed jobs, else 0. The directory is made by the first sweep that runs (Hydra makes
    its sweep directory): a course refused at its first sweep leaves nothing behind."""
    worst = 0
    for number, sweep in enumerate(profile.sweeps, 1):
        command = sweep_command(profile, sweep, directory, extra)
        print(f"course {profile.name}: sweep {number}/{len(profile.sweeps)} {sweep.name}: "
              f"{shell_command('python', 'run.py', *command[2:])}", flush=True)
        code = subprocess.run(command, cwd=ROOT).returncode
        if code == 2:
            print(f"error: sweep {sweep.name} refused its overrides (above); nothing more was run", file=sys.stderr)
            return 2
        if code not in (0, 1):  # interrupted (130), killed: the rest would be too
            return code
        worst = max(worst, code)
    return worst
