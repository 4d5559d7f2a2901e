"""Run the notebooks on Kaggle: ``python runner/run.py params/v5.yaml --kaggle``; the flags and the
dispatch to the steps (see docs/kaggle.md for the whole workflow).

Each selected notebook is rendered with the run's parameters and pushed as a private Kaggle
kernel; the package (as a wheel) and the data travel in private Kaggle data sets. The modules, in
the order a push uses them: ``prepare`` (checks, wheel, renders, secret scan; ``--dry-run`` stops
there), ``pushing`` (data sets, kernels, the manifest), ``following`` (status line, polling),
``fetching`` (outputs home, one folder per version), and ``pulling`` (``--pull``: edits made on
Kaggle back into params and ``notebooks/``). ``api`` is the only one that talks to Kaggle.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ai2human.errors import UserError
from ai2human.runner.kaggle.api import Client, KaggleError
from ai2human.runner.kaggle.auth import find_credentials, require_credentials
from ai2human.runner.lock import RunLock
from ai2human.runner.params import NOTEBOOK_DIR, RunSpec

# The flags that make a command line this module's (cli.py asks `requested`).
FLAGS = ("kaggle", "follow", "pull", "dry_run", "no_wait", "upload_data", "repush", "apply")


def add_arguments(parser) -> None:
    group = parser.add_argument_group("Kaggle", "run the notebooks on Kaggle's GPUs instead of here (docs/kaggle.md)")
    group.add_argument("--kaggle", action="store_true",
                       help="push the run as Kaggle kernels, follow them, and download their outputs")
    group.add_argument("--dry-run", action="store_true",
                       help="with --kaggle: render and check everything (the data too), print what would be pushed, send nothing")
    group.add_argument("--no-wait", action="store_true",
                       help="with --kaggle: push and return; follow later with --follow RUN")
    group.add_argument("--follow", nargs="+", metavar="RUN",
                       help="follow runs pushed earlier (folder names under --out) until their kernels finish")
    group.add_argument("--upload-data", action="store_true",
                       help="with --kaggle: create or version the private Kaggle data set holding dataset_path")
    group.add_argument("--repush", action="store_true",
                       help="with --kaggle: push notebooks that already completed on Kaggle again (e.g. after a code change)")
    group.add_argument("--pull", metavar="RUN",
                       help="download the run's kernels as edited on Kaggle: changed parameters into a params file, "
                            "code changes shown as a diff against notebooks/")
    group.add_argument("--apply", action="store_true",
                       help="with --pull: write the code changes into notebooks/ (refused over uncommitted changes)")
    group.add_argument("--poll-interval", type=float, default=30.0, metavar="SECONDS",
                       help="first wait between status checks; grows to 5 min while nothing changes (default: 30)")


def requested(args) -> bool:
    """Whether the command line asks for Kaggle (any of this module's flags), so main() must handle it."""
    return any(getattr(args, name, None) for name in FLAGS)


def without_params(args) -> bool:
    """``--follow RUN`` and ``--pull RUN`` work on a run folder, not on params files."""
    return bool(getattr(args, "follow", None) or getattr(args, "pull", None))


def main(args, specs: list[RunSpec], notebook_dir: Path = NOTEBOOK_DIR, log=print) -> int:
    """``--kaggle`` / ``--follow`` / ``--pull``: 0 when every kernel completed, 1 otherwise;
    UserError (exit 2) for bad input or an unreachable Kaggle."""
    try:
        return _main(args, specs, notebook_dir, log)
    except KaggleError as exc:
        log(f"error: {exc}\nkernels already pushed keep running on Kaggle; `--follow RUN` picks them up again")
        return 1


def _locked(out_root: Path, runs) -> contextlib.ExitStack:
    """One runner per run folder (``runner.lock``): a second follower would push and fetch twice."""
    stack = contextlib.ExitStack()
    for run in dict.fromkeys(runs):
        if (out_root / run).is_dir():
            stack.enter_context(RunLock(out_root / run))
    return stack


def _main(args, specs, notebook_dir, log) -> int:
    from ai2human.runner.kaggle import following, prepare, pulling, pushing

    out_root = Path(getattr(args, "out", None) or "runs").resolve()
    follow_runs = getattr(args, "follow", None) or []
    pull_run = getattr(args, "pull", None)
    dry_run = getattr(args, "dry_run", False)
    if sum(map(bool, (follow_runs, pull_run, specs))) > 1:
        raise UserError("give params files with --kaggle, --follow RUN, or --pull RUN: one at a time")
    if getattr(args, "apply", False) and not pull_run:
        raise UserError("--apply goes with --pull RUN")
    if pull_run:
        require_credentials()
        with _locked(out_root, [pull_run]):
            return pulling.pull(Client(log=log).connect(), out_root, pull_run, notebook_dir,
                                apply=getattr(args, "apply", False), log=log)
    if not follow_runs and not getattr(args, "kaggle", False):
        raise UserError("--dry-run, --no-wait, --repush and --upload-data go with --kaggle")
    if follow_runs and (dry_run or getattr(args, "upload_data", False)):
        raise UserError("--follow only follows; --dry-run and --upload-data go with --kaggle")
    creds = find_credentials() if dry_run else require_credentials()
    poll = max(float(getattr(args, "poll_interval", 30.0)), 0.0)
    if follow_runs:
        with _locked(out_root, follow_runs):
            tracked = pushing.load_tracked(out_root, follow_runs)
            return following.follow(Client(log=log).connect(), tracked, poll, log)
    if not specs:
        raise UserError("--kaggle needs at least one params file")
    push = prepare.prepare(args, specs, out_root, notebook_dir, creds, log)
    if dry_run:
        prepare.print_plan(push, log)
        return 0
    with _locked(out_root, [spec.run_name for spec in specs]):
        pushing.ship_datasets(push.client, push, log)
        tracked = pushing.start(push.client, push, log)
        if getattr(args, "no_wait", False):
            runs = " ".join(dict.fromkeys(t.run_name for t in tracked))
            where = f" --out {out_root}" if out_root != Path("runs").resolve() else ""
            log(f"pushed; follow with: python runner/run.py --follow {runs}{where}")
            return 0
        return following.follow(push.client, tracked, poll, log)
