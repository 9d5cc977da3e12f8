"""The docs (README.md, docs/*.md) against the code they describe: the site builds with no broken
link, every link resolves, the reference tables name what the code has, and every command in a
```bash block composes (`python run.py ...`) or exists (`python -m sweeper ...`)."""
from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob

from sweeper.errors import Refused
from sweeper.hparams_table import table
from sweeper.paths import conf_dir
from sweeper.job.record import Record
from sweeper.status import Status
from sweeper.schema import describe, leaves
from tests.conftest import ROOT, skip_or_fail

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^(```+|~~~+)\s*(\w*)")


# -- reading Markdown --------------------------------------------------------------------------------

def _prose(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks (code lines become empty)."""
    lines, fence = [], None
    for line in path.read_text().splitlines():
        match = FENCE.match(line.strip())
        if fence is None and match:
            fence = match.group(1)
            lines.append("")
        elif fence is not None:
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
            lines.append("")
        else:
            lines.append(line)
    return lines


def _code_blocks(path: Path, language: str) -> list[str]:
    """The lines of the fenced blocks marked `language` (```bash)."""
    lines, inside, fence = [], False, None
    for line in path.read_text().splitlines():
        match = FENCE.match(line.strip())
        if fence is None and match:
            fence, inside = match.group(1), match.group(2) == language
        elif fence is not None and line.strip() == fence:
            fence, inside = None, False
        elif inside:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """The anchor of a heading, as Python-Markdown's toc (MkDocs) and, for these headings, GitHub make it."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(path: Path) -> set[str]:
    return {_slug(line.lstrip("#").strip()) for line in _prose(path) if re.match(r"#{1,6} ", line)}


def _table_after(path: Path, heading: str) -> list[list[str]]:
    """The rows (cells, header and rule left out) of the first table under `heading`."""
    lines = _prose(path)
    start = next(i for i, line in enumerate(lines) if re.match(r"#{1,6} ", line) and line.lstrip("#").strip() == heading)
    rows, seen = [], False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            seen = True
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif seen or re.match(r"#{1,6} ", line):
            break
    assert rows, f"{path.name}: no table under {heading!r}"
    return rows[2:]


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- the site ----------------------------------------------------------------------------------------

def test_the_site_builds_strict_so_a_broken_link_fails(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        skip_or_fail("mkdocs is not installed: pip install 'mkdocs>=1.6' (the test extra has it)")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                            "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_every_page_of_docs_is_in_the_site_navigation():
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {page for entry in nav for page in entry.values()}
    assert listed == {path.name for path in DOCS.glob("*.md")}


def _links() -> list[tuple[Path, str]]:
    links = []
    for path in PAGES:
        for line in _prose(path):
            line = re.sub(r"`[^`]*`", "", line)  # code is not a link
            links += [(path, target) for target in re.findall(r"\]\(([^)\s]+)\)", line)]
    return links


@pytest.mark.parametrize("page, target", _links(), ids=lambda x: x.name if isinstance(x, Path) else x)
def test_every_internal_link_resolves_to_a_file_and_heading(page, target):
    if re.match(r"[a-z]+:", target):
        return  # http(s), mailto: not ours
    file, _, anchor = target.partition("#")
    resolved = (page.parent / file).resolve() if file else page
    assert resolved.exists(), f"{page.name}: {target} -> {resolved} does not exist"
    if anchor:
        assert resolved.suffix == ".md", f"{page.name}: {target}: an anchor into a file that is not Markdown"
        assert anchor in _anchors(resolved), f"{page.name}: {target}: no heading #{anchor} in {resolved.name}"


# -- reference tables against the code ---------------------------------------------------------------

def test_the_record_table_names_every_field_of_record_in_order():
    rows = _table_after(DOCS / "records.md", "The result record")
    documented = [name for row in rows for name in _names(row[0])]
    assert documented == list(Record.__struct_fields__)


def test_the_status_table_names_every_status_in_order():
    rows = _table_after(DOCS / "records.md", "Statuses")
    documented = [name for row in rows for name in _names(row[0])]
    assert documented == [status.value for status in Status]


def test_the_hyperparameter_table_is_the_declarations():
    """The table is `python -m sweeper hparams`: generated from the files' declarations and the registry."""
    lines = _prose(DOCS / "configuration.md")
    start = lines.index("| key | type | declared in, default | allowed | what |")
    assert "\n".join(lines[start:start + len(table([conf_dir()]).splitlines())]) == table([conf_dir()])


def test_the_config_tables_give_every_typed_key_its_type_from_the_schema():
    rows = [*_table_after(DOCS / "configuration.md", "Hyperparameters"), *_table_after(DOCS / "configuration.md", "Types")]
    documented = [(name, row[1]) for row in rows for name in _names(row[0]) if name in dict(leaves())]
    assert sorted(documented) == sorted((key, describe(tp)) for key, tp in leaves())


# -- commands ----------------------------------------------------------------------------------------

def _commands(prefix: str) -> list[str]:
    commands = []
    for path in PAGES:
        for line in _code_blocks(path, "bash"):
            line = line.strip()
            if line.startswith(prefix):
                commands.append(line)
    return sorted(set(commands))


_HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp"}
_HYDRA_FLAGS = {"--help", "-h", "--hydra-help", "--resolve", "--info", "-i"}


def _one_job(line: str) -> tuple[bool, list[str], list[str]]:
    """`python run.py -m a=1,2 b=x` -> (multirun, the overrides as given, one job's overrides: each
    list's first value; a search space, which only a search takes, left to the search)."""
    tokens = shlex.split(line, comments=True)[2:]
    multirun, given, skip = False, [], False
    for token in tokens:
        if skip:
            skip = False
        elif token in ("-m", "--multirun"):
            multirun = True
        elif token in _HYDRA_FLAGS_WITH_VALUE:
            skip = True
        elif token not in _HYDRA_FLAGS:
            given.append(token)
    job = []
    for override in OverridesParser.create().parse_overrides(given):
        if not override.is_sweep_override():
            job.append(override.input_line)
            continue
        assert multirun, f"{override.input_line} is a sweep: the command needs -m"
        if not override.is_discrete_sweep():
            assert "hparams_search=" in line, f"{override.input_line} is a search space: only a search takes it"
            continue
        if isinstance(override.value(), Glob):
            group = override.key_or_group
            options = sorted(path.stem for path in (ROOT / "conf" / group).glob("*.yaml"))
            first = override.value().filter(options)[0]
        else:
            first = next(iter(override.sweep_string_iterator()))
        job.append(f"{override.get_key_element()}={first}")
    return multirun, given, job


@pytest.mark.parametrize("line", _commands("python run.py"), ids=str)
def test_every_run_command_in_the_docs_composes(line):
    """Composition only (fast, nothing runs): Hydra's compose API with one job of the command,
    and the checks run.py makes before anything is written."""
    from sweeper.hparams import check_or_exit
    from sweeper.refusals import check_argv, check_bypass, check_single_run

    multirun, given, job = _one_job(line)
    try:
        check_argv(given)
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name="config", overrides=job, return_hydra_config=True)
        if multirun:
            check_or_exit(cfg)
            check_bypass(cfg, job)
        else:
            check_single_run(cfg)
    except Refused as refusal:
        pytest.fail(f"{line}: refused: {refusal.message}")
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("line", _commands("python -m sweeper"), ids=str)
def test_every_sweeper_command_in_the_docs_exists(line, capsys):
    from sweeper.__main__ import main

    tokens = shlex.split(line, comments=True)[3:]
    with pytest.raises(SystemExit) as done:
        main([tokens[0], "--help"])
    help_text = capsys.readouterr().out
    assert done.value.code == 0, f"{line}: no command {tokens[0]!r}"
    for option in (token.split("=")[0] for token in tokens if token.startswith("--")):
        assert option in help_text, f"{line}: {tokens[0]} has no option {option}"


def test_every_benchmark_the_docs_name_exists():
    named = {name for path in [*PAGES, ROOT / "benchmarks" / "RESULTS.md"]
             for name in re.findall(r"benchmarks/\w+\.py", path.read_text())}
    assert named and not [name for name in named if not (ROOT / name).is_file()]


def test_the_readme_layout_names_every_module():
    """The annotated tree in README.md's Layout names every module of sweeper/ and tasks/."""
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):].split("\n## ", 1)[0]
    modules = [path for folder in ("sweeper", "tasks") for path in (ROOT / folder).rglob("*.py") if path.name != "__init__.py"]
    missing = [str(path.relative_to(ROOT)) for path in modules if path.name not in layout]
    assert not missing, f"README.md's Layout does not name {missing}"
