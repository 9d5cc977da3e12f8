"""`python -m sweeper COMMAND DIR`: work on a sweep directory after (or while) it runs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper import words
from sweeper.errors import refuse, said

if TYPE_CHECKING:  # the commands import what they need when they run
    from sweeper.course_runner import Profile


def _directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory: give a sweep directory such as outputs/multirun/<date>")
    return path


def _not_a_job(args: argparse.Namespace) -> None:
    """Refuse DIR, naming the sweep's folder, when it is a job of a sweep."""
    from sweeper.sweep.jobs import sweep_of_job

    sweep = sweep_of_job(args.dir)
    if sweep is not None:
        refuse(f"{args.dir} is one job of the sweep {sweep}: give the sweep's folder "
               f"({words.sweeper_command(args.command, sweep)})")


def _sweeps(args: argparse.Namespace) -> list[Path]:
    """What collate and report read in DIR (sweeper/sweep/jobs.py sweeps_in); refused when DIR is a
    job of a sweep, or neither a sweep nor a folder of sweeps (NotASweep)."""
    from sweeper.sweep.jobs import sweeps_in

    _not_a_job(args)
    return sweeps_in(args.dir)


def _no_jobs(directory: Path) -> None:
    refuse(f"no job directories under {directory}: give the sweep directory (hydra.sweep.dir)")


def _host_name() -> str:
    """This machine's name as a laptop reaches it: its full name, or its own where that says `localhost`."""
    import socket

    full = socket.getfqdn()
    return socket.gethostname() if full.startswith("localhost") else full


def _collate(args: argparse.Namespace) -> int:
    from sweeper.sweep.collate import collate, with_columns, write_tables
    from sweeper.sweep.jobs import read_sweep

    jobs = read_sweep(args.dir, _sweeps(args)).jobs
    table = collate(args.dir, jobs)
    if table.empty:
        _no_jobs(args.dir)
    if args.cost:
        from sweeper.sweep.cost import columns, job_costs

        table = with_columns(table, columns(job_costs(jobs)))
    print(write_tables(args.dir, table))
    print(f"\n{words.counted(len(table), 'job')}; wrote {args.dir / 'results.csv'} and {args.dir / 'results.md'}")
    if args.by_config:
        from sweeper.sweep.by_config import write_by_config

        print(f"\n{write_by_config(args.dir, table)}")
        print(f"\nby configuration (jobs alike but for their seed: one row); wrote {args.dir / 'results_by_config.csv'} "
              f"and {args.dir / 'results_by_config.md'}")
    return 0


def _cost(args: argparse.Namespace) -> int:
    from sweeper.sweep.cost import COST_NAME, summary
    from sweeper.sweep.jobs import read_sweep

    text = summary(args.dir, read_sweep(args.dir, _sweeps(args)).jobs)
    print(text, end="")
    if not text.startswith("no job"):
        from sweeper.files import write_atomic

        write_atomic(args.dir / COST_NAME, text, durable=False)
        print(f"\nwrote {args.dir / COST_NAME}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from sweeper.sweep.resume import resume

    return resume(args.dir, args.overrides)


def _cancel(args: argparse.Namespace) -> int:
    from sweeper.sweep.cancel import cancel
    from sweeper.sweep.jobs import sweep_of_job
    from sweeper.job.manifest import MANIFEST_NAME

    if sweep_of_job(args.dir) is not None or not (args.dir / MANIFEST_NAME).exists():
        refuse(f"{args.dir} is not a sweep's directory (no jobs.json): give the sweep's folder (hydra.sweep.dir)")
    return cancel(args.dir)


def _report(args: argparse.Namespace) -> int:
    from sweeper.report import report
    from sweeper.sweep.jobs import has_job_dir

    sweeps = _sweeps(args)
    if not any(has_job_dir(sweep) for sweep in sweeps):
        _no_jobs(args.dir)
    path, figures = report(args.dir, sweeps)
    print(f"wrote {path}")
    for figure in figures:
        print(f"wrote {figure}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from sweeper.status import summary
    from sweeper.launching.backend import backend_of
    from sweeper.sweep.status_command import pending_lines, rows_shown, sweep_status

    _not_a_job(args)
    sweep, table = sweep_status(args.dir)
    if table.empty:
        refuse(f"no jobs under {args.dir}: give the sweep directory (hydra.sweep.dir)")
    table, left_out = rows_shown(table, args.all)
    if not table.empty:
        width = table["overrides"].str.len().max()
        print(table.to_string(index=False, justify="left", formatters={"overrides": lambda text: text.ljust(width)}))
    if left_out:
        print(left_out)
    reasons = pending_lines(sweep)
    if reasons:
        print("\n" + "\n".join(reasons))
    for backend in map(backend_of, sweep.unanswered):
        print(f"warning: {backend.title} did not answer within {backend.answer_timeout():g} s: {backend.title} states unknown",
              file=sys.stderr)
    print(f"\n{summary(job.status for job in sweep.jobs)} ({args.dir})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import getpass

    from sweeper.serve.app import listen, make_app, new_token, serve

    sweeps = _sweeps(args)
    sock = listen(args.host, args.port)
    port, token = sock.getsockname()[1], new_token()
    shown = "localhost" if args.host in ("127.0.0.1", "localhost", "::1") else \
        f"[{args.host}]" if ":" in args.host else args.host  # an IPv6 address in a URL: in brackets
    print(f"serving {args.dir} at http://{shown}:{port}/?token={token} (Ctrl-C stops it); from a laptop: "
          f"{words.command('ssh', '-N', '-L', f'{port}:localhost:{port}', f'{getpass.getuser()}@{_host_name()}')}, "
          "then open that URL there",
          flush=True)
    serve(make_app(args.dir, sweeps, token), sock)
    return 0


def _list_course(profile: Profile, directory: Path, overrides: list[str]) -> int:
    """Each sweep of the profile, its job count and its command; nothing runs."""
    from hydra.errors import HydraException

    from sweeper.course_runner import planned_jobs, sweep_command

    total = 0
    for sweep in profile.sweeps:
        try:
            count = len(planned_jobs(profile, sweep, overrides))
        except HydraException as e:
            refuse(f"sweep {sweep.name}: {' '.join(str(e).split())}")
        total += count
        command = sweep_command(profile, sweep, directory, overrides)
        typed = words.command("python", "run.py", *command[2:])
        print(f"{sweep.name} ({sweep.exercise}): {words.counted(count, 'job')}: {typed}")
    print(f"course {profile.name}: {words.counted(len(profile.sweeps), 'sweep')}, {words.counted(total, 'job')}, "
          f"into {directory}")
    return 0


def _course(args: argparse.Namespace) -> int:
    from sweeper.course_runner import check_overrides, load_profile, run_course

    profile = load_profile(args.profile)
    check_overrides(args.overrides, "the command line")
    directory = args.dir or Path("outputs") / "course" / profile.name
    if args.list:
        return _list_course(profile, directory, args.overrides)
    if args.report_only and not directory.is_dir():
        refuse(f"{directory} does not exist: run `{words.sweeper_command('course', profile.name)}` first, "
               "or give its directory with --dir")
    code = 0 if args.report_only else run_course(profile, directory, args.overrides)
    if code not in (0, 1):
        return code
    from sweeper.report.course_report import course_report

    markdown, page, figures = course_report(directory, profile)
    print(f"wrote {markdown} and {page} ({len(figures)} figures)")
    return code


def _hparams(args: argparse.Namespace) -> int:
    from sweeper.hparams_table import table
    from sweeper.paths import conf_dir

    print(table([conf_dir(), *([args.config_dir] if args.config_dir else [])]))
    return 0


def _new_task(args: argparse.Namespace) -> int:
    from sweeper.new_task import write_task

    written = write_task(args.name, args.dir)
    for path in written:
        print(f"wrote {path}")
    here = "" if args.dir == Path(".") else f"{words.command('cd', args.dir)} && "
    print(f"next: {here}pytest test_{args.name}.py; {here}hpc-sweeper -m --config-dir conf task={args.name} hidden=8,32")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeper", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    collate = commands.add_parser("collate", help="one table of every job record under DIR")
    collate.add_argument("dir", type=_directory, help="a sweep directory, or a folder of sweeps")
    collate.add_argument("--by-config", action="store_true",
                         help="also one row per configuration (its repeats: jobs alike but for their seed), each "
                              "metric's mean, std and 95%% interval: results_by_config.csv and .md")
    collate.add_argument("--cost", action="store_true",
                         help="also each job's cost: core- and GPU-hours, CPU time, peak and asked memory, time limit "
                              "(cost.* columns; docs/slurm.md#cost)")
    collate.set_defaults(func=_collate)
    cost = commands.add_parser("cost", help="what DIR's jobs used and what they asked: core- and GPU-hours, "
                               "efficiencies, waste (docs/slurm.md#cost)")
    cost.add_argument("dir", type=_directory, help="a sweep directory, or a folder of sweeps")
    cost.set_defaults(func=_cost)
    again = commands.add_parser("resume", help="run the sweep stored in DIR again: only unfinished jobs run")
    again.add_argument("dir", type=_directory, help="the sweep directory (it holds multirun.yaml)")
    again.add_argument("overrides", nargs="*", help="launcher settings only, e.g. hydra/launcher=slurm")
    again.set_defaults(func=_resume)
    report = commands.add_parser("report", help="tables and figures of DIR in DIR/report/ (report.md, PNGs)")
    report.add_argument("dir", type=_directory, help="a sweep directory, or a folder of sweeps")
    report.set_defaults(func=_report)
    stop = commands.add_parser("cancel", help="stop a sweep's jobs (cancelled in Slurm; Ctrl-C of a sweep running "
                               "here), leaving it for resume")
    stop.add_argument("dir", type=_directory, help="a sweep directory")
    stop.set_defaults(func=_cancel)
    status = commands.add_parser("status", help="each job's state: from Slurm, then from its record")
    status.add_argument("dir", type=_directory, help="a sweep directory")
    status.add_argument("--all", action="store_true", help="list every job (a sweep of more than 100 jobs lists "
                        "those that did not end ok)")
    status.set_defaults(func=_status)
    serve = commands.add_parser("serve", help="a live page of DIR for a browser (docs/watching.md); read-only")
    serve.add_argument("dir", type=_directory, help="a sweep directory, or a folder of sweeps")
    serve.add_argument("--port", type=int, default=None, help="the port to listen on (default: the first free of 8765-8784)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default 127.0.0.1: this machine only; reach it through ssh -L)")
    serve.set_defaults(func=_serve)
    course = commands.add_parser("course", help="run a course profile's sweeps (course_profiles/), then write its report")
    course.add_argument("profile", help="smoke, quick or full (course_profiles/<profile>.yaml)")
    course.add_argument("overrides", nargs="*", help="Hydra overrides for every sweep, e.g. hydra/launcher=slurm data.dir=...")
    course.add_argument("--dir", type=Path, default=None, help="where the sweeps and the report go (default outputs/course/PROFILE)")
    course.add_argument("--report-only", action="store_true", help="rebuild the report from what is there; run nothing")
    course.add_argument("--list", action="store_true", help="list the sweeps, their job counts and commands; run nothing")
    course.set_defaults(func=_course)
    hparams = commands.add_parser("hparams", help="the hyperparameters the task and optimizer files declare, as a table")
    hparams.add_argument("--config-dir", type=_directory, default=None, help="your conf/ too (as run.py's --config-dir)")
    hparams.set_defaults(func=_hparams)
    new_task = commands.add_parser("new-task", help="write a task of your own to start from: NAME.py, "
                                   "conf/task/NAME.yaml, test_NAME.py (docs/configuration.md#your-own-directory)")
    new_task.add_argument("name", help="the task's name, its module's: a Python identifier")
    new_task.add_argument("--dir", type=Path, default=Path("."), help="where to write them (default: here; made if need be)")
    new_task.set_defaults(func=_new_task)
    # The course's overrides may come after its options (`course smoke --dir D data.dir=...`).
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "course":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if rest:
        args.overrides += rest
    with said():
        code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
