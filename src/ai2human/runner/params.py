"""Notebook parameters and params files: read the ``parameters`` cells, validate a run's settings.

The notebooks' ``parameters`` cells are the single source of truth for every knob: their names,
types (from the default) and documentation (the trailing comment). A params file may only set
what some selected notebook declares, with a value of the declared type; everything is checked
before anything runs, and every problem is reported at once.

    python -m ai2human.runner.params                       # print the params reference (markdown)
    python -m ai2human.runner.params --write-readme README.md
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from ai2human.errors import ParamsError
from ai2human.rules import MAX_PROBLEMS, check_values, format_problems
from ai2human.runner.paramsfile import parse_set, read_yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# Short names (used by `notebooks:` and `--only`) -> files, in execution order.
NOTEBOOKS = {"eda": "01_eda.ipynb", "pairs": "01b_pairs.ipynb", "finetune": "02_finetune.ipynb",
             "prefer": "02b_prefer.ipynb", "evaluate": "03_evaluate.ipynb"}
# Run when a params file names none; prefer (DPO, issue 19) is opt-in: listed in `notebooks:` or --only.
DEFAULT_NOTEBOOKS, OPT_IN = ["eda", "pairs", "finetune", "evaluate"], {"prefer"}
# A notebook that reads another's artifacts is skipped when that one fails (evaluate also waits for prefer when listed).
DEPENDS_ON = {"eda": [], "pairs": [], "finetune": [], "prefer": ["finetune"], "evaluate": ["finetune"]}
# ... and these read the pairs stage's file when pairs_source is not dataset (else the stage never runs).
READS_PAIRS = ("finetune", "evaluate")
# A stage a notebook folder may lack (the runner's test fixtures hold three notebooks).
OPTIONAL = {"pairs", "prefer"}
# Set by the runner, never by a params file.
RESERVED = {"run_dir"}
# Run metadata: keys a params file may hold that are not notebook parameters. name -> (type, default, help)
META = {
    "run_name": (str, "", "folder name under runs/; defaults to the params file's stem"),
    "notebooks": (list, DEFAULT_NOTEBOOKS, "which notebooks to run, in order: eda, pairs, finetune, prefer, evaluate (pairs only runs when pairs_source is not dataset; prefer only when listed)"),
    "description": (str, "", "free text shown in the manifest"),
    "kaggle_accelerator": (str, "NvidiaTeslaT4", "Kaggle accelerator for the GPU notebooks (a P100 is refused: no longer supported)"),
    "kaggle_public": (bool, False, "make the pushed Kaggle kernels public (default private)"),
    "kaggle_dataset": (str, "", "Kaggle data set holding dataset_path's file, OWNER/SLUG; \"\" = <you>/ai2human-<file stem>, which --upload-data creates"),
    "kaggle_data_license": (str, "other", "licence --upload-data declares for that data set (a Kaggle licence name, e.g. CC0-1.0, CC-BY-4.0)"),
}
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def dependencies(short: str, params: dict, stages: list[str] = ()) -> list[str]:
    """The notebooks ``short`` reads the artifacts of, given the parameters and the run's ``notebooks``."""
    pairs = short in READS_PAIRS and params.get("pairs_source", "dataset") != "dataset"
    prefer = short == "evaluate" and "prefer" in stages
    return DEPENDS_ON[short] + (["prefer"] if prefer else []) + (["pairs"] if pairs else [])


@dataclass
class Parameter:
    name: str
    default: object
    help: str
    notebooks: list[str] = field(default_factory=list)

    @property
    def type(self) -> type:
        return type(self.default)


def _comments_by_line(source: str) -> dict[int, str]:
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    return comments


def parameters_cell(notebook: dict) -> str:
    cells = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamsError(f"notebook has {len(cells)} cells tagged 'parameters'; it needs exactly one")
    src = cells[0]["source"]
    return "".join(src) if isinstance(src, list) else src


def read_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters a notebook declares: ``name -> Parameter`` in declaration order."""
    path = Path(path)
    source = parameters_cell(json.loads(path.read_text(encoding="utf-8")))
    comments = _comments_by_line(source)
    params = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParamsError(f"{path.name}: parameters cell line {node.lineno} is not a plain `name = literal` assignment")
        name = node.targets[0].id
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise ParamsError(f"{path.name}: parameter {name} needs a literal default") from None
        params[name] = Parameter(name, default, comments.get(node.lineno, ""))
    return params


def declared_parameters(notebooks: list[str] | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, Parameter]:
    """Parameters declared by the given notebooks (short names), merged; same name = same default."""
    merged: dict[str, Parameter] = {}
    for short in notebooks or list(NOTEBOOKS):
        if short in OPTIONAL and not (notebook_dir / NOTEBOOKS[short]).is_file():
            continue
        for name, p in read_parameters(notebook_dir / NOTEBOOKS[short]).items():
            if name in merged:
                if merged[name].default != p.default or merged[name].type is not p.type:
                    raise ParamsError(
                        f"parameter {name} has default {merged[name].default!r} in {merged[name].notebooks[0]} "
                        f"but {p.default!r} in {short}; the same name must mean the same thing"
                    )
                merged[name].notebooks.append(short)
            else:
                p.notebooks = [short]
                merged[name] = p
    return merged


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "a list"}.get(t, t.__name__)


def check_type(name: str, value, expected: type) -> str | None:
    """None if ``value`` fits a parameter whose default has type ``expected``, else the problem."""
    ok = (
        (expected is bool and isinstance(value, bool))
        or (expected is int and isinstance(value, int) and not isinstance(value, bool))
        or (expected is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (expected is str and isinstance(value, str))
        or (expected is list and isinstance(value, list))
    )
    if ok:
        return None
    return f"{name}: expected {_type_name(expected)}, got {value!r} ({type(value).__name__})"


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class RunSpec:
    """A validated run: what to execute and with which parameters."""

    run_name: str
    notebooks: list[str]
    params: dict  # every declared parameter with its final value (defaults filled in)
    overrides: dict  # what the params file and --set changed
    meta: dict
    params_file: str
    declared: dict[str, Parameter]

    def notebook_params(self, short: str) -> dict:
        """The parameters one notebook declares, to inject with papermill."""
        return {k: v for k, v in self.params.items() if short in self.declared[k].notebooks}


def _selection(value, option: str, allowed: list[str], problems: list[str]) -> list[str] | None:
    """Notebook short names from ``notebooks:`` or ``--only`` (a list or "a,b"); None after a problem."""
    names = [s.strip() for s in value.split(",")] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        problems.append(f"{option}: expected a list drawn from {', '.join(allowed)}, got {value!r}")
        return None
    names = [n for n in names if n]
    if not names:
        problems.append(f"{option}: names no notebook; choose from {', '.join(allowed)}")
        return None
    bad = [n for n in names if n not in allowed]
    for n in bad:
        if n in NOTEBOOKS:
            problems.append(f"{option}: {n} not among this run's notebooks ({', '.join(allowed)})")
        else:
            problems.append(f"{option}: {n[:40]!r} is not a notebook; choose from {', '.join(NOTEBOOKS)}{_suggest(n, list(NOTEBOOKS))}")
    return None if bad else [s for s in allowed if s in names]  # execution order is fixed


def _secret_problems(data: dict) -> dict[str, str]:
    """Params values that look like credentials (they would be written into manifest.json and the
    notebooks): ``key -> problem``. The message never repeats the value."""
    from ai2human.runner.credentials import scan_text

    problems = {}
    for key, value in data.items():
        texts = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
        kinds = sorted({kind for t in texts for _, kind in scan_text(t)})
        if kinds:
            problems[key] = (f"{key}: looks like a secret ({', '.join(kinds)}); params are written into manifest.json and "
                            "the reports: give credentials through the environment (HF_TOKEN, WANDB_API_KEY) or Kaggle Secrets")
    return problems


def _secret_lines(path: Path) -> list[str]:
    """Secrets in a params file's comments: the file's text is copied into manifest.json too."""
    from ai2human.runner.credentials import scan_text

    if not path.is_file():
        return []
    hits = scan_text(path.read_text(encoding="utf-8-sig"))
    return [f"line {n}: looks like a secret ({kind}); the params file is copied into manifest.json: remove it" for n, kind in hits]


def resolve_run(
    params_file: str | Path,
    sets: list[str] = (),
    only: str | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
) -> RunSpec:
    """Read and validate a params file plus ``--set`` overrides; raise ParamsError listing every problem.

    Names and types come from the notebooks' parameters cells, allowed values from ``ai2human.rules``.
    """
    path = Path(params_file)
    data = read_yaml(path)
    problems: list[str] = []
    for item in sets:
        try:
            key, value = parse_set(item)
        except ParamsError as exc:
            problems.append(str(exc))
            continue
        data[key] = value

    meta = {k: default for k, (_, default, _) in META.items()}
    meta["run_name"] = path.stem
    file_selected = _selection(data.get("notebooks", DEFAULT_NOTEBOOKS), "notebooks", list(NOTEBOOKS), problems) or DEFAULT_NOTEBOOKS
    data["notebooks"] = file_selected
    selected = file_selected
    if only is not None:  # an opt-in stage may be asked for by name; its parameters then count as selected
        allowed = [s for s in NOTEBOOKS if s in file_selected or s in OPT_IN]
        selected = _selection(only, f"--only {only[:40]}", allowed, problems) or file_selected
        file_selected = [s for s in allowed if s in file_selected or s in selected]
    declared = declared_parameters(list(NOTEBOOKS), notebook_dir)
    # Keys are checked against the file's notebooks, not --only's subset, so `--only eda` works
    # with a params file that also sets training parameters.
    in_selected = {k: p for k, p in declared.items() if set(p.notebooks) & set(file_selected)}
    # An opt-in stage's settings may sit in a file not listing it (demo.yaml's DPO values): checked, not run.
    dormant = {k: p for k, p in declared.items() if k not in in_selected and set(p.notebooks) <= OPT_IN}
    known = sorted(set(in_selected) | set(META))
    secrets = _secret_problems(data)
    problems += secrets.values() or _secret_lines(path)
    overrides, unknown = {}, 0
    for key, value in data.items():
        if key in secrets:
            continue  # any other message would quote the value
        if key in META:
            problem = check_type(key, value, META[key][0])
            if problem:
                problems.append(problem)
            else:
                meta[key] = value
        elif key in RESERVED:
            problems.append(f"{key}: set by the runner (from --out and run_name); remove it from the params file")
        elif key in in_selected:
            problem = check_type(key, value, declared[key].type)
            if problem:
                problems.append(problem)
            else:
                overrides[key] = float(value) if declared[key].type is float else value
        elif key in dormant:
            problems += [p for p in [check_type(key, value, declared[key].type)] if p] or check_values({key: value})
        elif key in declared:
            problems.append(f"{key}: only declared by {', '.join(declared[key].notebooks)}, which this run does not include")
        else:
            unknown += 1
            # A suggestion costs a fuzzy match; only the listed problems get one.
            hint = _suggest(str(key), known) if unknown <= MAX_PROBLEMS else ""
            problems.append(f"{str(key)[:80]}: unknown parameter{hint}")
    run_name = str(meta["run_name"])
    if not SAFE_NAME.match(run_name) or ".." in run_name:
        problems.append(f"run_name: {run_name[:120]!r} is not a safe folder name (letters, digits, '.', '_', '-'; no '/' or '..')")

    params = {k: p.default for k, p in in_selected.items()}
    params.update({k: v for k, v in overrides.items() if k in params})
    typed = {k: v for k, v in params.items() if k in overrides or k not in data}
    problems += check_values(typed)
    if problems:
        raise ParamsError(f"{path}: {len(problems)} problem(s):\n{format_problems(problems)}")
    if params.get("pairs_source", "dataset") == "dataset" and "pairs" not in (only or "").replace(" ", "").split(","):
        selected = [s for s in selected if s != "pairs"]  # it would write nothing that changes training
    return RunSpec(run_name, selected, params, overrides, meta, str(path), declared)


def main(argv: list[str] | None = None) -> int:
    from ai2human.runner.reference import main as reference_main

    return reference_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
