"""Run the notebooks on Kaggle: ``python runner/run.py params/v5.yaml --kaggle``.

Each selected notebook is rendered with the run's parameters and pushed as a private Kaggle
kernel; the package (as a wheel) and the data travel in private Kaggle data sets. A notebook that
reads another's artifacts is pushed once that one completes, with its output attached. The runner
follows the kernels with a live status line and brings each one's output home into
``runs/<run>/kaggle/<notebook>/output/`` with an HTML report, recording kernel URLs and statuses
in ``runs/<run>/manifest.json``. Several params files push one set of kernels each and are
followed together. See docs/kaggle.md for the whole workflow.

The package's parts: ``kaggle_bundle`` builds and checks what is uploaded (no network),
``kaggle_api`` talks to Kaggle, this module decides what to push when and reports.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ai2human.runner.credentials import scan_paths
from ai2human.errors import UserError
from ai2human.runner.kaggle.api import Client, KaggleError, find_credentials, require_credentials
from ai2human.runner.kaggle.bundle import (
    PLACEHOLDER_USER, SECRETS, CodeBuild, DataSet, KernelPlan, accelerator, check_spec, kernel_title,
    plan_dataset, plan_kernels, slugify, stage_code, stage_dataset, validate_metadata,
)
from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS, RunSpec
from ai2human.rundir import KAGGLE_WORKING, MANIFEST, Manifest
from ai2human.runner.runs import new_manifest, render_html, resolve_paths

MAX_POLL_S = 300.0  # polite ceiling between status checks while nothing changes
LOG_TAIL = 20
# Output files not worth bringing home: training checkpoints are resume state for that Kaggle
# session (about 0.5 GB each for a 7B QLoRA run); the adapter and the reports are what matter.
OUTPUT_PATTERN = r"^(?!checkpoints/)"
ACTIVE = {"queued", "running"}
DONE = {"completed", "failed", "cancelled", "skipped"}
FROM_KAGGLE = {"QUEUED": "queued", "NEW_SCRIPT": "queued", "RUNNING": "running", "COMPLETE": "completed",
               "ERROR": "failed", "CANCEL_REQUESTED": "cancelled", "CANCEL_ACKNOWLEDGED": "cancelled"}


def add_arguments(parser) -> None:
    group = parser.add_argument_group("Kaggle", "run the notebooks on Kaggle's GPUs instead of here (docs/kaggle.md)")
    group.add_argument("--kaggle", action="store_true",
                       help="push the run as Kaggle kernels, follow them, and download their outputs")
    group.add_argument("--dry-run", action="store_true",
                       help="with --kaggle: render and check everything, print what would be pushed, send nothing")
    group.add_argument("--no-wait", action="store_true",
                       help="with --kaggle: push and return; follow later with --follow RUN")
    group.add_argument("--follow", nargs="+", metavar="RUN",
                       help="follow runs pushed earlier (folder names under --out) until their kernels finish")
    group.add_argument("--upload-data", action="store_true",
                       help="with --kaggle: create or version the private Kaggle data set holding dataset_path")
    group.add_argument("--poll-interval", type=float, default=30.0, metavar="SECONDS",
                       help="first wait between status checks; grows to 5 min while nothing changes (default: 30)")


def requested(args) -> bool:
    """Whether the command line asks for Kaggle (any of this module's flags), so main() must handle it."""
    return any(getattr(args, name, None) for name in ("kaggle", "follow", "dry_run", "no_wait", "upload_data"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _since(iso: str | None) -> str:
    if not iso:
        return ""
    seconds = int((datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# ---------------------------------------------------------------------------- entry point


def main(args, specs: list[RunSpec], notebook_dir: Path = NOTEBOOK_DIR, log=print) -> int:
    """``--kaggle`` / ``--follow``: 0 when every kernel completed, 1 otherwise; UserError for bad input."""
    try:
        return _main(args, specs, notebook_dir, log)
    except KaggleError as exc:
        log(f"error: {exc}\nkernels already pushed keep running on Kaggle; `--follow RUN` picks them up again")
        return 1


def _main(args, specs, notebook_dir, log) -> int:
    out_root = Path(getattr(args, "out", None) or "runs").resolve()
    follow_runs = getattr(args, "follow", None) or []
    dry_run = getattr(args, "dry_run", False)
    if follow_runs and specs:
        raise UserError("give params files with --kaggle, or --follow RUN to follow runs pushed earlier, not both")
    if not follow_runs and not getattr(args, "kaggle", False):
        raise UserError("--dry-run, --no-wait and --upload-data go with --kaggle")
    if follow_runs and (dry_run or getattr(args, "upload_data", False)):
        raise UserError("--follow only follows; --dry-run and --upload-data go with --kaggle")
    creds = find_credentials() if dry_run else require_credentials()
    poll = max(float(getattr(args, "poll_interval", 30.0)), 0.0)
    if follow_runs:
        tracked = _load_tracked(out_root, follow_runs)
        client = Client(log=log).connect()
        return _follow(client, tracked, poll, log)
    if not specs:
        raise UserError("--kaggle needs at least one params file")
    push = _prepare(args, specs, out_root, notebook_dir, creds, log)
    if dry_run:
        _print_plan(push, log)
        return 0
    client = push.client
    _ship_datasets(client, push, log)
    tracked = _start(client, push, log)
    if getattr(args, "no_wait", False):
        runs = " ".join(dict.fromkeys(t.run_name for t in tracked))
        log(f"pushed; follow with: python runner/run.py --follow {runs}" + (f" --out {out_root}" if out_root != Path("runs").resolve() else ""))
        return 0
    return _follow(client, tracked, poll, log)


# ---------------------------------------------------------------------------- preparing a push


@dataclass
class Push:
    specs: list[RunSpec]
    username: str
    code: CodeBuild
    data: dict[str, DataSet]  # run_name -> data set (None when the notebooks read no dataset_path)
    upload_data: bool
    plans: dict[str, list[KernelPlan]]  # run_name -> kernels
    kaggle_params: dict[str, dict]  # run_name -> the parameters as the kernels get them
    out_root: Path
    client: Client | None


def _check_run_folder(spec: RunSpec, out_root: Path, kaggle_params: dict, fresh: bool, dry_run: bool) -> None:
    """A run folder holds one run: refuse to mix a local run, or other parameters, into it."""
    run_dir = out_root / spec.run_name
    manifest = Manifest.load(run_dir) if run_dir.is_dir() else None
    if manifest is None:
        if run_dir.is_dir() and any(p.name != "kaggle" for p in run_dir.iterdir()):
            raise UserError(f"{run_dir} exists and is not a run folder (no {MANIFEST}); choose another run_name or --out")
        return
    if fresh:
        if not dry_run:
            shutil.rmtree(run_dir)
        return
    if manifest.data.get("executor") != "kaggle":
        raise UserError(f"{run_dir} holds a local run; pass --fresh to replace it with a Kaggle run, or set another run_name")
    old = manifest.data.get("params", {})
    changed = [k for k in sorted(set(old) | set(kaggle_params)) if old.get(k) != kaggle_params.get(k)]
    if changed:
        raise UserError(f"{run_dir} was pushed with other parameters ({', '.join(changed[:5])}); "
                        "pass --fresh to start it over, or set another run_name")


def _prepare(args, specs, out_root, notebook_dir, creds, log) -> Push:
    """Everything before the first network call that changes anything: checks, wheel, renders, scan."""
    dry_run = getattr(args, "dry_run", False)
    upload = getattr(args, "upload_data", False)
    fresh = getattr(args, "fresh", False)
    problems = []
    params = {spec.run_name: resolve_paths(spec) for spec in specs}
    for spec in specs:
        problems += [f"{spec.params_file}: {p}" for p in check_spec(spec, params[spec.run_name])]
    titles = {}
    for spec in specs:
        for short in spec.notebooks:
            slug = slugify(kernel_title(spec.run_name, short))
            if slug in titles and titles[slug] != spec.run_name:
                problems.append(f"run_names {titles[slug]!r} and {spec.run_name!r} give the same Kaggle kernel {slug}; rename one")
            titles[slug] = spec.run_name
    if problems:
        raise UserError("cannot push to Kaggle:\n" + "\n".join(f"  - {p}" for p in problems))

    client = None
    if dry_run:
        username = (creds.username if creds else None) or PLACEHOLDER_USER
    else:
        client = Client(log=log).connect()  # an access token needs one call to learn whose it is
        username = client.username

    data, kaggle_params = {}, {}
    by_ref: dict[str, DataSet] = {}
    for spec in specs:
        dataset_path = params[spec.run_name].get("dataset_path")
        ds = plan_dataset(str(dataset_path), spec.meta, username) if dataset_path else None
        if ds is not None:
            seen = by_ref.setdefault(ds.ref, ds)
            if seen.local != ds.local:
                raise UserError(f"two runs put different files in the Kaggle data set {ds.ref} "
                                f"({seen.local} and {ds.local}); set kaggle_dataset in one params file")
        data[spec.run_name] = ds
        kp = dict(params[spec.run_name], run_dir=str(KAGGLE_WORKING))
        if ds is not None:
            kp["dataset_path"] = ds.kaggle_path
        kaggle_params[spec.run_name] = kp
        _check_run_folder(spec, out_root, kp, fresh, dry_run)

    code = stage_code(out_root, username)
    plans = {spec.run_name: plan_kernels(spec, out_root, username, code, data[spec.run_name], notebook_dir)
             for spec in specs}
    problems = [p for run in plans.values() for k in run for p in validate_metadata(k.metadata, k.folder)]
    if problems:
        raise UserError("the kernel metadata would be rejected:\n" + "\n".join(f"  - {p}" for p in problems))

    uploads = [code.folder]
    if upload:  # the data file is scanned where the user can fix it, not as its staged copy
        for ds in by_ref.values():
            if ds.local is not None:
                uploads += [ds.local, stage_dataset(ds, out_root) / "dataset-metadata.json"]
    uploads += [k.folder / name for run in plans.values() for k in run for name in (k.notebook, "kernel-metadata.json")]
    findings = scan_paths(uploads)
    if findings:
        raise UserError("refusing to push: credential-like strings in files that would be uploaded:\n"
                        + "\n".join(f"  {f}" for f in findings)
                        + "\nremove them; keys reach a kernel only through Kaggle Secrets (docs/kaggle.md)")
    return Push(specs, username, code, data, upload, plans, kaggle_params, out_root, client)


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _print_plan(push: Push, log) -> None:
    code = push.code
    log("dry run: nothing was sent to Kaggle. A push would:")
    log(f"  - make sure the private data set {code.ref} holds build {code.build} "
        f"({code.wheel}, {_size(code.folder / code.wheel)}), uploading a new version if not")
    for ref, ds in {d.ref: d for d in push.data.values() if d is not None}.items():
        if ds.local is None:
            log(f"  - attach the data set {ref} (read as {ds.kaggle_path})")
        elif push.upload_data:
            log(f"  - create or version the private data set {ref} from {_rel(ds.local)} ({_size(ds.local)}, "
                f"licence {ds.license})")
        else:
            log(f"  - attach the data set {ref}, which must exist (--upload-data creates it from {_rel(ds.local)})")
    for run, kernels in push.plans.items():
        for k in kernels:
            shape = k.metadata.get("machine_shape") or "CPU"
            when = f", after {', '.join(k.depends_on)} completes, with its output attached" if k.depends_on else ""
            log(f"  - push {k.ref} ({shape}, {'private' if k.metadata['is_private'] else 'PUBLIC'}{when})\n"
                f"      from {_rel(k.folder)}/")
    log(f"W&B and Hugging Face keys reach the kernels only as Kaggle Secrets named {' and '.join(SECRETS)}.")


# ---------------------------------------------------------------------------- data sets


def _ship_datasets(client: Client, push: Push, log) -> None:
    code = push.code
    status = client.dataset_status(code.ref)
    if status is not None and code.marker in client.dataset_files(code.ref):
        log(f"code: {code.ref} already holds build {code.build}")
    else:
        how = client.upload_dataset(code.folder, code.ref, f"build {code.build}")
        log(f"code: {how} {code.ref} with build {code.build}; waiting until Kaggle has processed it")
        client.wait_dataset_ready(code.ref)
        _wait_for_file(client, code.ref, code.marker)
    for ds in {d.ref: d for d in push.data.values() if d is not None}.values():
        if push.upload_data and ds.local is not None:
            folder = push.out_root / ".kaggle-data" / ds.slug
            how = client.upload_dataset(folder, ds.ref, f"{ds.local.name} uploaded by runner/run.py --upload-data")
            log(f"data: {how} {ds.ref} from {_rel(ds.local)}; waiting until Kaggle has processed it")
            client.wait_dataset_ready(ds.ref)
        elif client.dataset_status(ds.ref) is None:
            hint = f"pass --upload-data to create it from {_rel(ds.local)}" if ds.local else "check kaggle_dataset"
            raise UserError(f"the Kaggle data set {ds.ref} does not exist or is not visible to {push.username}; {hint}")


def _wait_for_file(client: Client, ref: str, name: str, tries: int = 30) -> None:
    # "ready" can still describe the previous version for a moment after a new one is created.
    delay = 2.0
    for _ in range(tries):
        if name in client.dataset_files(ref):
            return
        client.sleep(delay)
        delay = min(delay * 1.5, 60)
    raise KaggleError(f"{ref}: the new version with {name} did not appear; rerun the same command later")


# ---------------------------------------------------------------------------- manifest and tracking


@dataclass
class Tracked:
    """One kernel being followed; its state lives in the run's manifest."""

    manifest: Manifest
    short: str
    folder: Path
    ref: str
    depends_on: list[str]

    @property
    def run_name(self) -> str:
        return self.manifest.data["run_name"]

    @property
    def name(self) -> str:
        return f"{self.run_name}/{self.short}"

    @property
    def entry(self) -> dict:
        return self.manifest.data["notebooks"][self.short]

    def dep_entries(self) -> list[dict]:
        return [self.manifest.data["notebooks"][d] for d in self.depends_on]


def _open_manifest(spec: RunSpec, push: Push) -> Manifest:
    run_dir = push.out_root / spec.run_name
    params = push.kaggle_params[spec.run_name]
    manifest = Manifest.load(run_dir)
    if manifest is None or manifest.data.get("executor") != "kaggle":  # (_check_run_folder vetted it)
        manifest = new_manifest(spec, params, run_dir, executor="kaggle")
        manifest.data["status"] = "pushing"
    ds = push.data.get(spec.run_name)
    manifest.data["kaggle"] = {
        "username": push.username,
        "code_dataset": push.code.ref,
        "build": push.code.build,
        "data_dataset": ds.ref if ds else None,
        "accelerator": accelerator(spec.meta),
        "public": bool(spec.meta.get("kaggle_public", False)),
        "secrets": list(SECRETS),
    }
    manifest.data["invocations"].append({"started": _now(), "notebooks": list(spec.notebooks), "executor": "kaggle"})
    return manifest


def _start(client: Client, push: Push, log) -> list[Tracked]:
    """Open each run's manifest and push every kernel whose inputs are ready (most wait for nothing)."""
    tracked = []
    for spec in push.specs:
        manifest = _open_manifest(spec, push)
        run_dir = manifest.path.parent
        for plan in push.plans[spec.run_name]:
            old = manifest.data["notebooks"].get(plan.short, {})
            skip = old.get("status") == "completed" and old.get("build") == push.code.build and old.get("fetched")
            entry = old if skip else {"file": plan.notebook, "status": "pending"}
            entry.update(kernel=plan.ref, folder=str(plan.folder.relative_to(run_dir)), depends_on=plan.depends_on)
            manifest.data["notebooks"][plan.short] = entry
            if skip:
                log(f"{spec.run_name}/{plan.short}: completed on Kaggle earlier with this build; not pushed again (--fresh redoes it)")
            tracked.append(Tracked(manifest, plan.short, plan.folder, plan.ref, plan.depends_on))
        manifest.data["status"] = "running"
        manifest.save()
    for t in tracked:
        if t.entry["status"] == "pending" and all(d["status"] == "completed" and d.get("fetched") for d in t.dep_entries()):
            _push(client, t, push.code.build, log)
    return tracked


def _push(client: Client, t: Tracked, build: str, log) -> None:
    result = client.push_kernel(t.folder)
    t.entry.update(status="queued", kaggle_status=None, version=result.version, url=result.url,
                   pushed=_now(), build=build, fetched=False)
    for key in ("finished", "wall_s", "error", "html", "output_dir", "reason"):
        t.entry.pop(key, None)
    t.manifest.save()
    log(f"{t.name}: pushed {result.ref} (version {result.version}): {result.url}")


def _load_tracked(out_root: Path, runs: list[str]) -> list[Tracked]:
    tracked = []
    for run in runs:
        manifest = Manifest.load(out_root / run)
        if manifest is None or manifest.data.get("executor") != "kaggle":
            pushed = sorted(p.parent.name for p in out_root.glob(f"*/{MANIFEST}")
                            if json.loads(p.read_text(encoding="utf-8")).get("executor") == "kaggle")
            raise UserError(f"--follow {run}: {out_root / run} is not a run pushed to Kaggle; "
                            f"pushed runs under {out_root}: {', '.join(pushed) or 'none'}")
        run_dir = manifest.path.parent
        for short, entry in manifest.data["notebooks"].items():
            tracked.append(Tracked(manifest, short, run_dir / entry["folder"], entry["kernel"], entry.get("depends_on", [])))
    return tracked


# ---------------------------------------------------------------------------- following


class StatusLine:
    """One live line on a terminal (rewritten in place); in a log, a line only when something changed."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.shown = ""

    def event(self, text: str) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.shown = ""
        self.stream.flush()

    def show(self, text: str, changed: bool) -> None:
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            self.stream.write("\r\033[K" + text[:width])
            self.shown = text
        elif changed:
            self.stream.write(text + "\n")
        self.stream.flush()


def _describe(t: Tracked) -> str:
    e = t.entry
    if e["status"] == "pending":
        return f"{t.short} waiting for {', '.join(t.depends_on)}"
    if e["status"] in ACTIVE:
        return f"{t.short} {e.get('kaggle_status') or e['status'].upper()} {_since(e.get('pushed'))}"
    return f"{t.short} {e['status']}"


def _line(tracked: list[Tracked], started: float) -> str:
    runs: dict[str, list[str]] = {}
    for t in tracked:
        runs.setdefault(t.run_name, []).append(_describe(t))
    elapsed = int(time.monotonic() - started)
    return f"[{elapsed // 60}:{elapsed % 60:02d}] " + " | ".join(f"{run}: {' · '.join(parts)}" for run, parts in runs.items())


def _follow(client: Client, tracked: list[Tracked], poll: float, log) -> int:
    line = StatusLine()
    emit = line.event if log is print else log
    started = time.monotonic()
    interval = poll
    build = {t.run_name: t.manifest.data.get("kaggle", {}).get("build") for t in tracked}
    try:
        while True:
            changed = False
            for t in tracked:
                changed |= _step(client, t, build[t.run_name], emit)
            for manifest in {id(t.manifest): t.manifest for t in tracked}.values():
                _settle(manifest)
            text = _line(tracked, started)
            line.show(text, changed)
            if all(t.entry["status"] in DONE and (t.entry["status"] != "completed" or t.entry.get("fetched")) for t in tracked):
                break
            interval = poll if changed else min(max(interval * 1.5, poll), max(MAX_POLL_S, poll))
            _wait(interval, line, tracked, started)
    except KeyboardInterrupt:
        runs = " ".join(dict.fromkeys(t.run_name for t in tracked))
        emit(f"\nstopped following; the kernels keep running on Kaggle. Resume with: python runner/run.py --follow {runs}")
        return 130
    return _summary(tracked, emit)


def _wait(seconds: float, line: StatusLine, tracked, started) -> None:
    if not line.tty:
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        line.show(_line(tracked, started), False)


def _step(client: Client, t: Tracked, build: str, emit) -> bool:
    """Advance one kernel: push it once its inputs completed, poll it, fetch it when done."""
    e = t.entry
    if e["status"] == "pending":
        deps = t.dep_entries()
        failed = [d for d, de in zip(t.depends_on, deps) if de["status"] in DONE - {"completed"}]
        if failed:
            e.update(status="skipped", reason=f"{', '.join(failed)} did not complete")
            t.manifest.save()
            emit(f"{t.name}: skipped because {', '.join(failed)} did not complete")
            return True
        if all(de["status"] == "completed" and de.get("fetched") for de in deps):
            _push(client, t, build, emit)
            return True
        return False
    if e["status"] == "completed" and not e.get("fetched"):
        _fetch(client, t, emit)  # a fetch that failed on an earlier call
        return True
    if e["status"] not in ACTIVE:
        return False
    status, message = client.kernel_status(t.ref, e.get("version"))
    if status == e.get("kaggle_status"):
        return False
    e["kaggle_status"] = status
    e["status"] = FROM_KAGGLE.get(status, "running")
    if e["status"] in DONE:
        e.update(finished=_now(), wall_s=round((datetime.now(timezone.utc) - datetime.fromisoformat(e["pushed"])).total_seconds()))
    t.manifest.save()
    emit(f"{t.name}: {status} after {_since(e.get('pushed'))}")
    if e["status"] == "completed":
        _fetch(client, t, emit)
    elif e["status"] in ("failed", "cancelled"):
        _fetch(client, t, emit, failure=message or status)
    return True


def _settle(manifest: Manifest) -> None:
    statuses = [e["status"] for e in manifest.data["notebooks"].values()]
    if any(s in ACTIVE or s == "pending" for s in statuses):
        status = "running"
    elif manifest.data.get("credentials_found"):
        status = "credentials_found"
    else:
        status = "completed" if all(s == "completed" for s in statuses) else "failed"
    if manifest.data.get("status") != status:
        manifest.data["status"] = status
        manifest.save()


# ---------------------------------------------------------------------------- bringing results home


def _executed_notebook(out: Path, name: str) -> Path | None:
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


def _fetch(client: Client, t: Tracked, emit, failure: str | None = None) -> None:
    e = t.entry
    out = t.folder / "output"
    shutil.rmtree(out, ignore_errors=True)  # one version's output replaces the last
    run_dir = t.manifest.path.parent
    try:
        files = client.download_output(t.ref, e.get("version"), out, OUTPUT_PATTERN)
    except KaggleError as exc:
        e["fetch_error"] = str(exc)
        if failure is None:
            emit(f"{t.name}: could not download the output ({exc}); `--follow {t.run_name}` tries again")
        else:  # still say why it failed, from what the status told
            _report_failure(t, out, None, failure, emit)
        t.manifest.save()
        return
    e.pop("fetch_error", None)
    executed = _executed_notebook(out, NOTEBOOKS[t.short])
    e["output_dir"] = str(out.relative_to(run_dir))
    if executed is not None:
        e["notebook_output"] = str(executed.relative_to(run_dir))
        e["html"] = str(render_html(executed).relative_to(run_dir))
    leaks = [str(f) for f in scan_paths([out])]
    if leaks:
        t.manifest.data.setdefault("credentials_found", []).extend(leaks)
        emit(f"{t.name}: WARNING credential-like strings in the kernel's output (also on Kaggle: delete that "
             "version and rotate the key):\n    " + "\n    ".join(leaks))
    e["fetched"] = True
    if failure is None:
        report = e.get("html") or "no executed notebook in the output"
        emit(f"{t.name}: {len(files)} output files in {_rel(out)}; report: {_rel(run_dir / report) if e.get('html') else report}")
    else:
        _report_failure(t, out, executed, failure, emit)
    t.manifest.save()


def _report_failure(t: Tracked, out: Path, executed: Path | None, failure: str, emit) -> None:
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
        lines.append(f"  last {len(tail)} lines of the log ({_rel(log_file)}):")
        lines += ["    " + s for s in tail]
    lines.append(f"  kernel: {t.entry.get('url') or t.ref}")
    emit("\n".join(lines))


def _summary(tracked: list[Tracked], emit) -> int:
    ok = True
    for manifest in {id(t.manifest): t.manifest for t in tracked}.values():
        _settle(manifest)
        run_dir = manifest.path.parent
        emit(f"run {manifest.data['run_name']}: {manifest.data['status']} ({_rel(manifest.path)})")
        for short, e in manifest.data["notebooks"].items():
            where = f" -> {_rel(run_dir / e['html'])}" if e.get("html") else ""
            reason = f" ({e['reason']})" if e.get("reason") else ""
            emit(f"  {short}: {e['status']}{reason}{where}")
        ok &= manifest.data["status"] == "completed"
    return 0 if ok else 1
