"""``python -m ai2human.app``: every start-up problem is one line and exit 2, before the model loads
where it can be (bad folders, corrupt files, a port in use)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from ai2human.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ai2human.app",
        description="Serve a trained run as a web page that rewrites AI-written text and judges each rewrite.",
        epilog="example: python -m ai2human.app --run runs/demo   (then open http://127.0.0.1:7860)",
    )
    parser.add_argument("--run", type=Path, help="run folder (runs/<run_name>) with adapter/, manifest.json, yardstick.joblib")
    parser.add_argument("--adapter", type=Path, help="an adapter folder (default: RUN/adapter)")
    parser.add_argument("--base", default="", help="base model (default: the run's model_name, else the adapter's)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 to share on a network)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--concurrency", type=int, default=1, help="rewrites generated at once; others wait in the queue")
    return parser


def check_port(host: str, port: int) -> None:
    """UserError when ``host:port`` cannot be listened on (checked before minutes of model loading)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port") from None


def main(argv: list[str] | None = None) -> int:
    from ai2human.app.page import load_rewriter, serve
    from ai2human.app.run_config import read_run

    args = build_parser().parse_args(argv)
    try:
        if args.concurrency < 1:
            raise UserError(f"--concurrency must be at least 1, got {args.concurrency}")
        config = read_run(args.run, args.adapter, args.base)
        check_port(args.host, args.port)
        if config.credentials_warning:
            print(f"warning: {config.credentials_warning}", file=sys.stderr, flush=True)
        rewriter = load_rewriter(config)
        print(f"serving run {config.name} on http://{args.host}:{args.port}", flush=True)
        serve(rewriter, args.host, args.port, args.concurrency)
    except UserError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the port was taken between the check and the launch
        print(f"error: cannot serve on {args.host}:{args.port} ({exc}); pass another --port", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
