"""Pushing: the code and data sets up first, then each kernel whose inputs are ready, with its
place in the run's manifest. A notebook that completed is never pushed again unless asked
(``--repush``), and a re-push keeps what the earlier version left (see ``fetching``)."""

from __future__ import annotations

from pathlib import Path

from ai2human.errors import UserError
from ai2human.rundir import Manifest, now
from ai2human.runner.kaggle.api import Client, KaggleError
from ai2human.runner.kaggle.kernels import SECRETS, accelerator
from ai2human.runner.kaggle.prepare import Push
from ai2human.runner.kaggle.tracking import Tracked, pushed_manifest, rel
from ai2human.runner.params import RunSpec
from ai2human.runner.provenance import new_manifest

# What a re-pushed notebook's entry keeps of the version before it, under "previous".
KEPT = ("version", "status", "output_dir", "output_version", "html", "notebook_output", "build", "checkpoint_step")


def ship_datasets(client: Client, push: Push, log) -> None:
    code = push.code
    status = client.dataset_status(code.ref)
    if status is not None and code.marker in client.dataset_files(code.ref):
        log(f"code: {code.ref} already holds build {code.build}")
    else:
        how = client.upload_dataset(code.folder, code.ref, f"build {code.build}")
        log(f"code: {how} {code.ref} with build {code.build}; waiting until Kaggle has processed it")
        client.wait_dataset_ready(code.ref)
        wait_for_file(client, code.ref, code.marker)
    for ds in {d.ref: d for d in push.data.values() if d is not None}.values():
        if push.upload_data and ds.local is not None:
            folder = push.out_root / ".kaggle-data" / ds.slug
            how = client.upload_dataset(folder, ds.ref, f"{ds.local.name} uploaded by runner/run.py --upload-data")
            log(f"data: {how} {ds.ref} from {rel(ds.local)}; waiting until Kaggle has processed it")
            client.wait_dataset_ready(ds.ref)
        elif client.dataset_status(ds.ref) is None:
            hint = f"pass --upload-data to create it from {rel(ds.local)}" if ds.local else "check kaggle_dataset"
            raise UserError(f"the Kaggle data set {ds.ref} does not exist or is not visible to {push.username}; {hint}")


def wait_for_file(client: Client, ref: str, name: str, tries: int = 30) -> None:
    # "ready" can still describe the previous version for a moment after a new one is created.
    delay = 2.0
    for _ in range(tries):
        if name in client.dataset_files(ref):
            return
        client.sleep(delay)
        delay = min(delay * 1.5, 60)
    raise KaggleError(f"{ref}: the new version with {name} did not appear; rerun the same command later")


def open_manifest(spec: RunSpec, push: Push) -> Manifest:
    run_dir = push.out_root / spec.run_name
    params = push.kaggle_params[spec.run_name]
    manifest = Manifest.load(run_dir)
    if manifest is None or manifest.data.get("executor") != "kaggle":  # (check_run_folder vetted it)
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
        "resume": push.resume.get(spec.run_name, {}),  # notebook -> checkpoint step its push resumes from
    }
    manifest.data["invocations"].append({"started": now(), "notebooks": list(spec.notebooks), "executor": "kaggle"})
    return manifest


def start(client: Client, push: Push, log) -> list[Tracked]:
    """Open each run's manifest and push every kernel whose inputs are ready (most wait for nothing)."""
    tracked = []
    for spec in push.specs:
        manifest = open_manifest(spec, push)
        run_dir = manifest.path.parent
        for plan in push.plans[spec.run_name]:
            old = manifest.data["notebooks"].get(plan.short, {})
            done = old.get("status") == "completed" and old.get("fetched") and not push.repush
            entry = old if done else {"file": plan.notebook, "status": "pending"}
            if not done and old.get("version"):
                entry["previous"] = {k: old[k] for k in KEPT if k in old}
                if old.get("output_version"):  # which version output/ holds, whatever this one does
                    entry["output_version"] = old["output_version"]
            entry.update(kernel=plan.ref, folder=str(plan.folder.relative_to(run_dir)), depends_on=plan.depends_on)
            manifest.data["notebooks"][plan.short] = entry
            if done:
                changed = old.get("build") != push.code.build
                why = (f"the code changed since (build {old.get('build')} -> {push.code.build}); --repush runs it again"
                       if changed else "--repush runs it again")
                log(f"{spec.run_name}/{plan.short}: completed on Kaggle earlier; not pushed again ({why})")
            tracked.append(Tracked(manifest, plan.short, plan.folder, plan.ref, plan.depends_on))
        manifest.data["status"] = "running"
        manifest.save()
    for t in tracked:
        if t.entry["status"] == "pending" and all(d["status"] == "completed" and d.get("fetched") for d in t.dep_entries()):
            push_one(client, t, push.code.build, log)
    return tracked


def push_one(client: Client, t: Tracked, build: str, log) -> None:
    result = client.push_kernel(t.folder)
    e = t.entry
    e.update(status="queued", kaggle_status=None, version=result.version, url=result.url,
             pushed=now(), build=build, fetched=False)
    for key in ("finished", "wall_s", "error", "html", "notebook_output", "output_dir", "reason", "fetch_error",
                "fetch_attempts", "fetch_failed", "resumed_from_step", "checkpoint_step"):
        e.pop(key, None)
    t.manifest.save()
    resume = t.manifest.data.get("kaggle", {}).get("resume", {}).get(t.short)
    note = f"; resumes from its checkpoint at step {resume}" if resume else ""
    log(f"{t.name}: pushed {result.ref} (version {result.version}): {result.url}{note}")


def load_tracked(out_root: Path, runs: list[str]) -> list[Tracked]:
    tracked = []
    for run in runs:
        manifest = pushed_manifest(out_root, run, "--follow")
        run_dir = manifest.path.parent
        notebooks = manifest.data["notebooks"]
        retry = {short for short, e in notebooks.items() if e.pop("fetch_failed", None)}
        for short, entry in notebooks.items():
            if short in retry:  # a later --follow tries the download again...
                entry.pop("fetch_attempts", None)
            elif entry["status"] == "skipped" and retry & set(entry.get("depends_on", [])):
                entry["status"] = "pending"  # ...and what waited for that output waits again
                entry.pop("reason", None)
            tracked.append(Tracked(manifest, short, run_dir / entry["folder"], entry["kernel"], entry.get("depends_on", [])))
    return tracked
