"""The runner's command line: validate params files, then execute the notebooks (or push to Kaggle).

    python runner/run.py params/v5.yaml [--set KEY=VALUE ...] [--only eda,finetune] [--out runs/]

Every params file and override is validated before anything runs; a problem exits 2 with a
message saying what to fix, and no run folder is created.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ai2human.runner.kaggle import workflow as kaggle
from ai2human.errors import UserError
from ai2human.runner.params import NOTEBOOKS, REPO_ROOT, resolve_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Run the ai2human notebooks with a params file: validate, execute with papermill into runs/<run_name>/.",
        epilog="Re-running the same command resumes at the first notebook that did not complete.",
    )
    parser.add_argument("params", nargs="*", type=Path, help="params file(s), e.g. params/demo.yaml")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter (value read as YAML); repeatable")
    parser.add_argument("--only", metavar="NOTEBOOKS", help=f"comma-separated subset of {','.join(NOTEBOOKS)}")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="runs root folder (default: runs/)")
    parser.add_argument("--fresh", action="store_true", help="delete the run folder and start over")
    parser.add_argument("--force", action="store_true", help="run a large model on a CPU-only machine anyway")
    parser.add_argument("--stream", action="store_true", help="stream the notebooks' output instead of a progress bar")
    kaggle.add_arguments(parser)
    return parser


def _usage_with_files(parser: argparse.ArgumentParser) -> str:
    files = sorted((REPO_ROOT / "params").glob("*.yaml"))
    listing = "\n".join(f"  {f.relative_to(REPO_ROOT)}  {_first_comment(f)}" for f in files)
    return f"{parser.format_usage()}\nparams files:\n{listing}\n\nexample: python runner/run.py params/demo.yaml"


def _first_comment(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    on_kaggle = kaggle.requested(args)
    if not args.params and not getattr(args, "follow", None):
        print(_usage_with_files(parser), file=sys.stderr)
        return 2
    try:
        # Validate every file before running any, so a typo in the second file of a sweep is
        # caught before the first one spends an hour.
        specs = [resolve_run(p, args.sets, args.only) for p in args.params]
        names = [s.run_name for s in specs]
        if len(set(names)) != len(names):
            raise UserError(f"two params files give the same run_name ({', '.join(names)}); set run_name in each")
        if on_kaggle:
            # Kaggle's GPUs run it: the local hardware check does not apply.
            return kaggle.main(args, specs)
        from ai2human.runner.runs import check_run, execute_run, resolve_paths

        for spec in specs:
            check_run(spec, resolve_paths(spec), args.force)
        status = 0
        for spec in specs:
            status = max(status, execute_run(spec, args.out, fresh=args.fresh, force=args.force, stream=args.stream))
        return status
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
