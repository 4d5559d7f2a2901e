"""Bringing a finished kernel's output home, one folder per version, without ever losing one.

A version's files download into ``versions/<N>.partial/`` and are renamed only once complete: a
completed version becomes ``output/`` (the one before it moves to ``versions/<its N>/``), a failed
one becomes ``versions/<N>/``. So a re-push that fails, or a download cut short, never touches the
output already fetched.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from ai2human.rundir import CHECKPOINTS, TRAIN_METRICS
from ai2human.runner.credentials import scan_paths
from ai2human.runner.kaggle.api import Client, KaggleError, KaggleUnreachable
from ai2human.runner.kaggle.tracking import Tracked, rel
from ai2human.runner.params import NOTEBOOKS
from ai2human.runner.runs import render_html

# Everything but checkpoint weights and optimizer state (~0.5 GB a checkpoint for a 7B QLoRA run):
# those stay on Kaggle, where a resumed session reads them; their small JSON files come home so
# the runner knows which step a checkpoint holds.
OUTPUT_PATTERN = rf"^(?!{CHECKPOINTS}/.*\.(pt|pth|bin|safetensors)$)"
OUTPUT = "output"  # the newest completed version's output
VERSIONS = "versions"  # every other version's, by number
MAX_FETCH_TRIES = 3  # whole download attempts (each retried by the client) before giving up
LOG_TAIL = 20
RESUMED = re.compile(r"ai2human: resume checkpoint checkpoint-(\d+)")


def executed_notebook(out: Path, name: str) -> Path | None:
    """Kaggle saves the executed notebook as __notebook__.ipynb among the outputs; name it like a local run."""
    kaggle_copy = out / "__notebook__.ipynb"
    if kaggle_copy.is_file():
        kaggle_copy.replace(out / name)
    if (out / name).is_file():
        return out / name
    others = sorted(out.glob("*.ipynb"))
    return others[0] if others else None


def log_lines(path: Path) -> list[str]:
    """The text of a Kaggle kernel log (a JSON list of {stream_name, time, data}), as lines."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        entries = json.loads(text)
    except ValueError:
        entries = []
        for raw in text.splitlines():  # a log cut short is no longer one JSON document
            raw = raw.strip().lstrip("[,").rstrip(",]")
            try:
                entries.append(json.loads(raw))
            except ValueError:
                continue
        if not entries:
            return text.splitlines()
    if isinstance(entries, list):
        text = "".join(str(e.get("data", "")) for e in entries if isinstance(e, dict))
    return text.splitlines()


def failing_cell(notebook: Path | None) -> dict | None:
    """The first cell of an executed notebook that raised: index, first line, exception, message."""
    if notebook is None:
        return None
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    code_index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code_index += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                source = "".join(cell.get("source", "")).strip().splitlines()
                return {"cell": code_index, "cell_first_line": source[0] if source else "",
                        "source": "\n".join(source[:8]), "exception": output.get("ename", ""),
                        "message": str(output.get("evalue", "")).strip()}
    return None


def newest_checkpoint_step(out: Path) -> int:
    """The step of the newest checkpoint a fetched output says Kaggle holds (its trainer_state.json
    is written last, so its presence means the checkpoint was complete); 0 when none."""
    steps = [int(p.parent.name.rsplit("-", 1)[1]) for p in out.glob(f"{CHECKPOINTS}/checkpoint-*/trainer_state.json")
             if p.parent.name.rsplit("-", 1)[1].isdigit()]
    return max(steps, default=0)


def resumed_step(out: Path, log: Path) -> int:
    """The step this version resumed from: the setup cell's log line, else train_metrics.json."""
    for line in log_lines(log):
        found = RESUMED.search(line)
        if found:
            return int(found.group(1))
    try:
        return int(json.loads((out / TRAIN_METRICS).read_text(encoding="utf-8")).get("resumed_from_step") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _settle_folders(t: Tracked, partial: Path, version, completed: bool) -> Path:
    """Rename a complete download into place; the earlier output moves aside, never away."""
    e = t.entry
    versions = t.folder / VERSIONS
    if not completed:
        final = versions / str(version)
    else:
        final = t.folder / OUTPUT
        if final.exists():
            before = e.get("output_version") or "earlier"
            aside = versions / str(before)
            if aside.exists():
                shutil.rmtree(aside)  # the same version fetched twice: the newer copy is in `partial`
            final.replace(aside)
    if final.exists():
        shutil.rmtree(final)  # a failed version fetched again
    partial.replace(final)
    return final


def fetch(client: Client, t: Tracked, emit, failure: str | None = None) -> None:
    e = t.entry
    version = e.get("version") or 0
    partial = t.folder / VERSIONS / f"{version}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        files = client.download_output(t.ref, e.get("version"), partial, OUTPUT_PATTERN)
    except (KaggleError, KaggleUnreachable) as exc:  # a download cut off mid-follow is a failed try, not the end
        shutil.rmtree(partial, ignore_errors=True)
        e["fetch_error"] = str(exc)
        e["fetch_attempts"] = e.get("fetch_attempts", 0) + 1
        if e["fetch_attempts"] >= MAX_FETCH_TRIES:
            e["fetch_failed"] = True
            emit(f"{t.name}: gave up downloading the output after {e['fetch_attempts']} tries ({exc}); it stays on "
                 f"Kaggle at {e.get('url') or t.ref}. `--follow {t.run_name}` tries again later")
        elif failure is None:
            emit(f"{t.name}: could not download the output ({exc}); trying again "
                 f"({e['fetch_attempts']} of {MAX_FETCH_TRIES})")
        if failure is not None:  # still say why it failed, from what the status told
            report_failure(t, partial, None, failure, emit)
        t.manifest.save()
        return
    executed = executed_notebook(partial, NOTEBOOKS[t.short])
    name = executed.name if executed else None
    out = _settle_folders(t, partial, version, failure is None)
    for key in ("fetch_error", "fetch_attempts", "fetch_failed"):
        e.pop(key, None)
    e["output_dir"] = str(out.relative_to(t.run_dir))
    if failure is None:
        e["output_version"] = version
    if name is not None:
        e["notebook_output"] = str((out / name).relative_to(t.run_dir))
        e["html"] = str(render_html(out / name).relative_to(t.run_dir))
    leaks = [str(f) for f in scan_paths([out])]
    if leaks:
        t.manifest.data.setdefault("credentials_found", []).extend(leaks)
        emit(f"{t.name}: WARNING credential-like strings in the kernel's output (also on Kaggle: delete that "
             "version and rotate the key):\n    " + "\n    ".join(leaks))
    e["fetched"] = True
    log = out / f"{t.ref.split('/', 1)[1]}.log"
    step = resumed_step(out, log)
    if step:
        e["resumed_from_step"] = step
        emit(f"{t.name}: resumed from step {step}")
    if newest_checkpoint_step(out):
        e["checkpoint_step"] = newest_checkpoint_step(out)
    if failure is None:
        report = rel(t.run_dir / e["html"]) if e.get("html") else "no executed notebook in the output"
        emit(f"{t.name}: {len(files)} output files in {rel(out)}; report: {report}")
    else:
        report_failure(t, out, out / name if name else None, failure, emit)
    t.manifest.save()


def report_failure(t: Tracked, out: Path, executed: Path | None, failure: str, emit) -> None:
    log_file = out / f"{t.ref.split('/', 1)[1]}.log"
    tail = log_lines(log_file)[-LOG_TAIL:]
    cell = failing_cell(executed)
    t.entry["error"] = {"kaggle_message": failure, **({k: v for k, v in cell.items() if k != "source"} if cell else {})}
    lines = [f"{t.name}: failed on Kaggle: {failure}"]
    if cell:
        lines.append(f"  failing code cell {cell['cell']} raised {cell['exception']}: {cell['message']}")
        lines += ["    | " + s for s in cell["source"].splitlines()]
    else:
        lines.append("  failing cell: unknown (the output holds no executed notebook)")
    if tail:
        lines.append(f"  last {len(tail)} lines of the log ({rel(log_file)}):")
        lines += ["    " + s for s in tail]
    if t.entry.get("checkpoint_step"):
        lines.append(f"  Kaggle keeps its checkpoint at step {t.entry['checkpoint_step']}: push the same run again "
                     "to resume from it")
    lines.append(f"  kernel: {t.entry.get('url') or t.ref}")
    emit("\n".join(lines))
