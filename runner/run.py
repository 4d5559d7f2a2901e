#!/usr/bin/env python3
"""Run the notebooks with a params file: `python runner/run.py params/v5.yaml`.

A thin wrapper so the runner works from a fresh clone before or after `pip install -e .`;
the logic lives in src/ai2human/runner/cli.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ai2human.runner.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
