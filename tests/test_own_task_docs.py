"""docs/own_task.md, run as written: every command of its ```bash blocks, in order, in an empty
directory, with the project installed from a copy of this checkout (tests/installed.py) and the
test Slurm cluster up. What each step printed and wrote is then checked: a grid over the task's own
key and a nested key, its table, a search over a declared range, a Slurm sweep whose compute-node
jobs import the user's module, and the report."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGE = ROOT / "docs" / "own_task.md"


def bash_blocks(page: Path) -> str:
    """The page's ```bash blocks, one script."""
    return "\n".join(re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S))


@pytest.mark.slow
@pytest.mark.slurm
def test_the_own_task_page_runs_as_written(installed, tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + bash_blocks(PAGE)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=installed.env(), capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out, mine = done.stdout, tmp_path / "mine"

    assert "2 passed" in out  # new-task's own tests
    assert re.search(r"\| `hidden` \| an integer \| task=mine 16 \| an integer in \[1, 256\] \|", out)
    grid = [line for line in out.splitlines() if re.match(r"\[\d/4\] task=mine ", line)]
    assert len(grid) == 4 and all(" -> ok test_accuracy=" in line for line in grid), out
    header = (mine / "sweeps" / "grid" / "results.csv").read_text().splitlines()[0].split(",")
    assert {"hidden", "task.run.activation"} <= set(header[:header.index("status")])
    rows = {tuple(line.split(",")[header.index("hidden"):header.index("status")])
            for line in (mine / "sweeps" / "grid" / "results.csv").read_text().splitlines()[1:]}
    assert len(rows) == 4  # no two rows alike

    trials = [json.loads(path.read_text()) for path in (mine / "sweeps" / "search").glob("*/result.json")]
    assert len(trials) == 4 and all(1 <= t["hparams"]["hidden"] <= 256 for t in trials)
    assert re.search(r"^best: trial \d+ \(\[\d/4\]\): lr=\S+ hidden=\d+ -> ", out, flags=re.M), out

    for job, hidden in (("0", 4), ("1", 32)):
        record = json.loads((mine / "sweeps" / "slurm" / job / "result.json").read_text())
        assert record["status"] == "ok" and record["hparams"]["hidden"] == hidden
        assert record["environment"].get("SLURM_JOB_ID") and record["git_commit"] is None  # the installed copy

    report = (mine / "sweeps" / "grid" / "report" / "report.md").read_text()
    assert "### hidden x task.run.activation -> test_accuracy" in report


def test_the_page_shows_what_new_task_writes() -> None:
    """The page's YAML is new-task's file, and its signature is new-task's function's."""
    from sweeper.new_task import files

    written = files("mine")
    page = PAGE.read_text()
    assert re.search(r"```yaml\n(.*?)```", page, flags=re.S).group(1) == written[Path("conf") / "task" / "mine.yaml"]
    signature = re.search(r"```python\n(.*?)```", page, flags=re.S).group(1)
    assert signature in written[Path("mine.py")]
