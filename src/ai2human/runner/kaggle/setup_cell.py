"""The Kaggle setup cell: the first code cell of every notebook, the same cell everywhere.

Its source is ``kaggle/setup_cell.py``: on Kaggle it installs the package (from the attached code
data set, else from the repository) and finds the inputs; anywhere else it does nothing. A push
fills its ``AI2HUMAN_KAGGLE = {}`` line with what that kernel needs (build, sources), so a rendered
kernel never carries a second install cell.

    python -m ai2human.runner.kaggle.setup_cell notebooks/*.ipynb          # insert it, or refresh it
    python -m ai2human.runner.kaggle.setup_cell --check notebooks/*.ipynb  # exit 1 if missing or stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ai2human.runner.params import REPO_ROOT

TEMPLATE = REPO_ROOT / "kaggle" / "setup_cell.py"
TAG = "ai2human-setup"
_CONFIG = re.compile(r"^AI2HUMAN_KAGGLE = \{\}$", re.M)


def cell_source(config: dict | None = None) -> str:
    """The cell's text; with ``config``, its ``AI2HUMAN_KAGGLE`` line holds it as a literal."""
    text = TEMPLATE.read_text(encoding="utf-8").rstrip("\n")
    if not config:
        return text
    literal = "AI2HUMAN_KAGGLE = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in config.items()) + "}"
    text, found = _CONFIG.subn(lambda _: literal, text, count=1)
    if not found:
        raise RuntimeError(f"{TEMPLATE} lacks its `AI2HUMAN_KAGGLE = {{}}` line")
    return text


def setup_cell_index(nb) -> int | None:
    return next((i for i, c in enumerate(nb.cells) if TAG in c.get("metadata", {}).get("tags", [])), None)


def with_setup_cell(nb, config: dict | None = None) -> bool:
    """Make the setup cell the notebook's first code cell (inserted, or refreshed where it is);
    True when the notebook changed."""
    import nbformat

    source = cell_source(config)
    at = setup_cell_index(nb)
    if at is not None:
        changed = nb.cells[at].source != source
        nb.cells[at].source = source
        return changed
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [TAG]})
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        cell.pop("id", None)  # cell ids arrived in nbformat 4.5; older notebooks must not have one
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, cell)
    return True


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(prog="python -m ai2human.runner.kaggle.setup_cell",
                                     description="Insert or refresh the Kaggle setup cell as each notebook's first code cell.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a cell is missing or stale")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    stale = []
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if with_setup_cell(nb):
            stale.append(str(path))
            if not args.check:
                nbformat.write(nb, path)
    verb = "missing or stale in" if args.check else "written into"
    print(f"setup cell {verb}: {', '.join(stale)}" if stale else "setup cell current in every notebook")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
