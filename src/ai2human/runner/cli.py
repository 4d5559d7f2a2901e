"""The runner's command line: validate params files, then execute the notebooks (or push to Kaggle).

    python runner/run.py params/v5.yaml [--set KEY=VALUE ...] [--only eda,finetune] [--out runs/]

Every params file and override is validated before anything runs; a problem exits 2 with a
message saying what to fix, and no run folder is created.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from ai2human.runner.kaggle import workflow as kaggle
from ai2human.errors import UserError
from ai2human.runner.params import NOTEBOOKS, REPO_ROOT, resolve_run
from ai2human.runner.paramsfile import read_yaml


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
    parser.add_argument("--fresh", action="store_true", help="delete the run folder's results and start it over (another run_name starts a new run beside it)")
    parser.add_argument("--force", action="store_true", help="run a large model on a CPU-only machine anyway")
    parser.add_argument("--stream", action="store_true", help="print the cells' output as they run instead of a progress bar")
    kaggle.add_arguments(parser)
    return parser


def _usage_with_files(parser: argparse.ArgumentParser) -> str:
    files = sorted((REPO_ROOT / "params").glob("*.yaml"))
    width = max((len(str(f.relative_to(REPO_ROOT))) for f in files), default=0)
    listing = "\n".join(f"  {str(f.relative_to(REPO_ROOT)):<{width}}  {_describe(f)}" for f in files)
    return f"{parser.format_usage()}\nparams files:\n{listing}\n\nexample: python runner/run.py params/demo.yaml"


def _describe(path: Path) -> str:
    """A params file's ``description:`` (one whole line, also shown in the manifest), else its first comment sentence."""
    try:
        description = read_yaml(path).get("description")
    except UserError:
        description = None
    if isinstance(description, str) and description.strip():
        return description.strip()
    comment = " ".join(line.lstrip("# ").strip() for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    return comment.split(". ")[0].rstrip(".")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    on_kaggle = kaggle.requested(args)
    if not args.params and not kaggle.without_params(args):
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
        from ai2human.runner.execute import execute_run
        from ai2human.runner.precheck import check_run, resolve_paths

        for spec in specs:
            check_run(spec, resolve_paths(spec), args.force)
        status = 0
        for spec in specs:
            status = max(status, execute_run(spec, args.out, fresh=args.fresh, force=args.force, stream=args.stream))
        return status
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"error: disk full (No space left on device) writing {exc.filename or 'the run folder'}; "
              "free some space and run the same command again", file=sys.stderr)
        return 1
