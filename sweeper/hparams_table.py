"""The table of the hyperparameters there are: `python -m sweeper hparams [--config-dir DIR]`, and the
docs' table (docs/configuration.md, checked against it by tests/test_docs.py). Read from the
declarations in the task and optimizer files (sweeper/hparams.py), the project's and the user's,
then the framework's own keys and settings."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from sweeper.hparams import DECLARATIONS, REGISTRY, SETTINGS, declared
from sweeper.schema import describe, leaves, lookup, typed_keys

GROUPS = ("optimizer", "task")  # the groups whose files declare hyperparameters


def _cell(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def declared_rows(dirs: list[Path]) -> list[dict[str, str]]:
    """One row per declared key and range: its type, where it is declared (with each file's default),
    what it allows, and its help. Raises ConfigError for a declaration that is not one."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for group in GROUPS:
        for path in (p for d in dirs for p in sorted((d / group).glob("*.yaml"))):
            raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            if not isinstance(raw, dict) or not isinstance(raw.get(DECLARATIONS), dict):
                continue
            types = typed_keys(raw, lookup(raw, "task.run._target_")[1])
            for name, spec in raw[DECLARATIONS].items():
                hparam = declared(str(name), spec, types.get(str(name)))
                row = rows.setdefault((hparam.name, hparam.allowed), {
                    "key": hparam.name, "type": describe(hparam.type) if hparam.type else "any", "where": [], "allowed": hparam.allowed,
                    "help": hparam.help})
                row["where"].append(f"{group}={path.stem} {_cell(raw.get(name))}")
    return [{**row, "where": ", ".join(row["where"])} for row in rows.values()]


def framework_rows() -> list[dict[str, str]]:
    """The framework's own keys and settings (sweeper/hparams.py REGISTRY, SETTINGS)."""
    types = dict(leaves())
    return [{"key": h.name, "type": describe(types[h.name]), "where": "the framework", "allowed": h.allowed, "help": h.help}
            for h in (*REGISTRY, *SETTINGS)]


def markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| key | type | declared in, default | allowed | what |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| `{r['key']}` | {r['type']} | {r['where']} | {r['allowed']} | {r['help']} |" for r in rows]
    return "\n".join(lines)


def table(dirs: list[Path]) -> str:
    """The Markdown table of every hyperparameter that the files in `dirs` declare, then the framework's.
    Raises ConfigError for a declaration that is not one."""
    return markdown(declared_rows(dirs) + framework_rows())
