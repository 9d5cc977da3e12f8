"""A job's identity: the fingerprint of its configuration, and whether a record is of that job.

Where the data are read from (`data.dir`) is not what a job is: the same files in another folder
are the same experiment, so the fingerprint leaves it out. Records and job lists written before
hashed it in; `identity`'s former fingerprints and the job directory's `.hydra/config.yaml` still recognise them.
The data node's check (`_check_`) is not what a job computes either; its loader (`_target_`) is.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from omegaconf import DictConfig, OmegaConf

from sweeper.hparams import DECLARATIONS, recorded_hparams
from sweeper.job.record import RECORD_NAME, Record, read_record, read_summary
from sweeper.job.index import FileKey, Indexed
from sweeper.status import FINISHED
from sweeper.job.task import CHECK

# Keys that do not change what a job computes: Hydra's own, where logs go, the hyperparameters'
# declared ranges (sweeper/hparams.py) and how many seeds its sweep runs (the job's own is `seed`).
_NOT_FINGERPRINTED = ("hydra", "logging", DECLARATIONS, "repeats")
# The data node, and the course's tasks' copy of it (`data: ${data}`).
_DATA_NODES = (("data",), ("task", "run", "data"))
# Nested keys that do not either: where the data are read from.
_LOCATIONS = tuple((*node, "dir") for node in _DATA_NODES)
# The data node's loader is hashed: two data groups whose loaders differ are two experiments, even
# with equal arguments (a re-run into the same folder with data=other must not skip its jobs). The
# data node had no `_target_` before it became a config group (conf/data/), so a course job's
# fingerprint changed then; `former_of` gives the former form (the node less its loader), so that
# sweeps made before are recognised (tests/test_old_sweeps.py). Its check (`_check_`) is not hashed.
_LOADER = "_target_"
_KEEP = object()
# Keys added after records were written, left out at their default so those records keep their
# fingerprint (a job on one node is what it was before `nodes` existed); the task's copy too.
_ADDED_LATER = {"nodes": 1}


class MismatchError(Exception):
    """A job directory (or a sweep directory) holds the work of a different configuration;
    `job_dir` and `what` (what differs, in brackets) where it is one job's directory."""

    def __init__(self, message: str, job_dir: Path | None = None, what: str = "") -> None:
        super().__init__(message)
        self.job_dir, self.what = job_dir, what


def every_mismatch(errors: list[MismatchError], sweep_dir: Path, listed: bool = False, named: int = 5) -> MismatchError:
    """One error for every job of a sweep whose directory (or, `listed`, whose entry in the folder's
    job list) holds another configuration, the first `named` of them named: a user learns them all
    at once, not one run at a time."""
    if len(errors) == 1:
        return errors[0]
    names = ", ".join(f"{e.job_dir.name if e.job_dir else '?'} {e.what}" for e in errors[:named])
    more = f" and {len(errors) - named} more" if len(errors) > named else ""
    if listed:
        return MismatchError(f"{sweep_dir} holds another sweep: its jobs {names}{more} are other configurations: "
                             "use a new hydra.sweep.dir, or delete that directory to run it again")
    return MismatchError(f"{sweep_dir} holds the records of other configurations in {len(errors)} job directories: "
                         f"{names}{more}: use a new hydra.sweep.dir, or delete those directories to run them again")


def container(cfg: Any) -> dict[Any, Any]:
    """The resolved config less Hydra's own node: what a job's identity and fusion are read from."""
    return {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            for key in cfg if key != "hydra"}


def _without(content: dict[Any, Any], path: tuple[str, ...], value: Any = _KEEP) -> dict[Any, Any]:
    """`content` with the key at `path` deleted (value _KEEP) or set, copying only the dicts on the
    path (a sweep's jobs share the rest); `content` itself where the path is not there."""
    head, *rest = path
    node = content.get(head)
    if not rest:
        if head not in content:
            return content
        changed = {key: item for key, item in content.items() if key != head}
        if value is not _KEEP:
            changed[head] = value
        return changed
    if not isinstance(node, dict):
        return content
    inner = _without(node, tuple(rest), value)
    return content if inner is node else {**content, head: inner}


def _fingerprinted(content: dict[Any, Any]) -> dict[Any, Any]:
    """A container (see container) less the logging switches (the task's copy too)."""
    content = {key: value for key, value in content.items() if key not in _NOT_FINGERPRINTED}
    content = _without(content, ("task", "run", "logging"))  # a task may take the logging switches too
    for data in _DATA_NODES:
        content = _without(content, (*data, CHECK))
    for key, default in _ADDED_LATER.items():
        run = content.get("task", {}).get("run") if isinstance(content.get("task"), dict) else None
        for path, node in (((key,), content), (("task", "run", key), run if isinstance(run, dict) else {})):
            if key in node and node[key] == default:
                content = _without(content, path)
    return content


def _resolved(cfg: Any) -> dict[Any, Any]:
    """The resolved config, less Hydra's keys and the logging switches (the task's copy too)."""
    return _fingerprinted(container(cfg))


def _located(content: dict[Any, Any], data_dir: Any = None) -> dict[Any, Any]:
    """`content` less data.dir (data_dir=None), or with data.dir set to `data_dir[0]` (the former
    way; _KEEP: as it is); a copy where it changes."""
    if data_dir is _KEEP:
        return content
    for path in _LOCATIONS:
        content = _without(content, path, _KEEP if data_dir is None else data_dir[0])
    return content


def _content(cfg: Any, data_dir: Any = None) -> dict[Any, Any]:
    """What the fingerprint hashes: the resolved config less data.dir (see _located)."""
    return _located(_resolved(cfg), data_dir)


def _hash(content: dict[Any, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint(cfg: DictConfig) -> str:
    """A hash of the resolved job config, without Hydra's own (runtime) keys, the logging switches
    and where the data are (data.dir)."""
    return _hash(_content(cfg))


def fingerprint_of(resolved: dict[Any, Any]) -> str:
    """The fingerprint of a job from its config's `container`: a sweep's planner has it without a
    config for each job (sweeper/launching/compose.py)."""
    return _hash(_located(_fingerprinted(resolved)))


def former_of(resolved: dict[Any, Any]) -> tuple[str, ...]:
    """The fingerprints a job had before, from its config's `container`: before data.dir left the
    identity (records and job lists written then: with data.dir as it is now, and null, MNIST_DIR
    unset), and before the data node named its loader (without `_target_`)."""
    content = _fingerprinted(resolved)
    for data in _DATA_NODES:
        content = _without(content, (*data, _LOADER))
    return _hash(_located(content, _KEEP)), _hash(_located(content, (None,))), _hash(_located(content))


def identity(cfg: DictConfig) -> tuple[str, tuple[str, ...]]:
    """The fingerprint and the former ones (former_of), from one resolution of the config
    (resolving is most of a fingerprint's cost)."""
    resolved = container(cfg)
    return fingerprint_of(resolved), former_of(resolved)


def earlier_config(job_dir: Path | None) -> dict[Any, Any] | None:
    """The config of the job that ran in `job_dir` (Hydra's `.hydra/config.yaml`), as fingerprinted
    content; None when there is none, it is newer than the job's record (a job running now has
    written its own), or it cannot be resolved here."""
    if job_dir is None or not (path := Path(job_dir) / ".hydra" / "config.yaml").is_file():
        return None
    record = Path(job_dir) / RECORD_NAME
    if record.exists() and path.stat().st_mtime > record.stat().st_mtime:
        return None
    try:
        return _content(OmegaConf.load(path))
    except Exception:  # an interpolation that only resolved there and then: unknown
        return None


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flat(value, f"{prefix}{key}."))
        return flat or {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def _show(value: Any) -> str:
    return "null" if value is None else "(absent)" if value is _KEEP else str(value)


def _changes(before: dict[str, Any], after: dict[str, Any], limit: int = 4) -> str | None:
    """`lr: 0.1 -> 0.2, epochs: 1 -> 2`: the keys whose values differ; None when none do."""
    keys = [key for key in {**before, **after} if before.get(key, _KEEP) != after.get(key, _KEEP)]
    pair = {key: (repr(before.get(key, _KEEP)), repr(after.get(key, _KEEP))) for key in keys}
    top = {pair[key] for key in keys if "." not in key}
    # A nested key that took the top-level one's value (`optimizer.learning_rate: ${lr}`) repeats it.
    shown = [key for key in keys if "." not in key or pair[key] not in top]
    if not shown:
        return None
    text = ", ".join(f"{key}: {_show(before.get(key, _KEEP))} -> {_show(after.get(key, _KEEP))}" for key in shown[:limit])
    return text + (f" (and {len(shown) - limit} more)" if len(shown) > limit else "")


def difference(job_dir: Path | None, overrides: Sequence[str], hparams: dict[str, Any] | None,
               now_overrides: Sequence[str], now: DictConfig | None = None,
               now_hparams: dict[str, Any] | None = None) -> str | None:
    """What differs between the job that ran in `job_dir` (its `.hydra/config.yaml`, else its
    recorded `hparams` and `overrides`) and the configuration now (its config `now`, or its
    hyperparameters and overrides); None when nothing known differs."""
    earlier = earlier_config(job_dir)
    if earlier is not None and now is not None:
        found = _changes(_flat(earlier), _flat(_content(now)))
        if found:
            return found
    if now_hparams is None and now is not None:
        now_hparams = recorded_hparams(now)
    if hparams is not None and now_hparams is not None:
        found = _changes(dict(hparams), dict(now_hparams))
        if found:
            return found
    before = dict(o.partition("=")[::2] for o in overrides)
    after = dict(o.partition("=")[::2] for o in now_overrides)
    return _changes(before, after)


def same_configuration(recorded: str | None, expected: str, former: Iterable[str] = (),
                       job_dir: Path | None = None) -> bool:
    """Whether a recorded fingerprint is this configuration's: the same, one it had before (data.dir
    in it, no data loader in it), or the job directory's own config fingerprinted now is it."""
    if recorded == expected or recorded in tuple(former):
        return True
    earlier = earlier_config(job_dir)
    return earlier is not None and _hash(earlier) == expected


def is_same_job(record: Record, expected: str, overrides: list[str], former: Iterable[str] = (),
                job_dir: Path | None = None) -> bool:
    """Whether `record` was written by the job of this fingerprint (or of its `former` ones, or,
    for the job that ran in `job_dir`, of the config Hydra saved there). A record of schema 1
    hashed another layout of the config: there the same overrides in the same directory are the same job."""
    if same_configuration(record.fingerprint, expected, former, job_dir):
        return True
    return record.schema_version < 2 and list(record.overrides) == list(overrides)


def mismatch(job_dir: Path, record: Record, expected: str, overrides: list[str],
             now: DictConfig | None = None) -> MismatchError:
    changed = difference(job_dir, record.overrides, record.hparams, overrides, now)
    what = (f"({changed})" if changed else
            f"{' '.join(record.overrides) or 'defaults'} (fingerprint {record.fingerprint}), not "
            f"{' '.join(overrides) or 'defaults'} ({expected})")
    return MismatchError(f"{job_dir} holds the record of another configuration {what}: "
                         "use a new hydra.sweep.dir, or delete that directory to run it again", job_dir, what)


def finished_record(job_dir: Path, expected: str, overrides: list[str], former: Iterable[str] = (),
                    now: DictConfig | None = None, indexed: dict[FileKey, Indexed] | None = None) -> Record | None:
    """The job's finished record when it is there for this configuration; None if it must run.

    `former`: the fingerprints this configuration had before (identity); `now`: its
    config, to name what differs; `indexed`: the sweep index's lines of this job, where the
    caller read them: the record is then taken from there, without its history (planning a resume
    of 100,000 jobs reads no record file). Raises MismatchError when the directory holds the
    record of another configuration.
    """
    path = Path(job_dir) / RECORD_NAME
    if not path.exists():
        return None
    try:
        record = read_summary(path, indexed) if indexed else read_record(path)
    except ValueError:
        return None  # unreadable: run again, the new record replaces it
    if not is_same_job(record, expected, overrides, former, Path(job_dir)):
        raise mismatch(Path(job_dir), record, expected, overrides, now)
    return record if record.status in FINISHED else None
