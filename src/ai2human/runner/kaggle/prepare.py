"""Preparing a push: everything before the first network call that changes anything.

Checks (params, Kaggle values, the data loaded as the notebooks will load it), the wheel, the
rendered kernels, and the secret scan; a problem stops here with every problem listed. ``--dry-run``
ends here, printing the plan.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ai2human.errors import DataError, UserError
from ai2human.rundir import KAGGLE_WORKING, MANIFEST, Manifest, ManifestError
from ai2human.runner.credentials import scan_paths
from ai2human.runner.kaggle.api import Client
from ai2human.runner.kaggle.datasets import DataCheck, DataSet, check_data, plan_dataset, stage_dataset
from ai2human.runner.kaggle.kernels import SECRETS, KernelPlan, check_spec, plan_kernels, validate_metadata
from ai2human.runner.kaggle.names import PLACEHOLDER_USER, kernel_ref, kernel_title, slugify
from ai2human.runner.kaggle.tracking import rel
from ai2human.runner.kaggle.wheel import CodeBuild, stage_code
from ai2human.runner.params import RunSpec
from ai2human.runner.precheck import resolve_paths


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
    repush: bool = False  # push notebooks that completed earlier again
    resume: dict[str, dict[str, int]] = field(default_factory=dict)  # run -> notebook -> checkpoint step
    data_checks: dict[str, DataCheck] = field(default_factory=dict)  # run -> what loading the data found


def _load_manifest(run_dir: Path, fresh: bool) -> Manifest | None:
    try:
        return Manifest.load(run_dir) if run_dir.is_dir() else None
    except ManifestError as exc:
        if fresh:
            return None  # --fresh always recovers: the folder is started over
        raise UserError(f"{exc}; pass --fresh to start the run over") from None


def check_run_folder(spec: RunSpec, out_root: Path, kaggle_params: dict, fresh: bool, dry_run: bool) -> None:
    """A run folder holds one run: refuse to mix a local run, or other parameters, into it."""
    run_dir = out_root / spec.run_name
    manifest = _load_manifest(run_dir, fresh)
    corrupt = manifest is None and (run_dir / MANIFEST).is_file()  # unreadable: only --fresh gets here
    if fresh and (manifest is not None or corrupt):
        if not dry_run:
            shutil.rmtree(run_dir)
        return
    if manifest is None:
        if run_dir.is_dir() and any(p.name != "kaggle" for p in run_dir.iterdir()):
            raise UserError(f"{run_dir} exists and is not a run folder (no {MANIFEST}); choose another run_name or --out")
        return
    if manifest.data.get("executor") != "kaggle":
        raise UserError(f"{run_dir} holds a local run; pass --fresh to replace it with a Kaggle run, or set another run_name")
    old = manifest.data.get("params", {})
    changed = [k for k in sorted(set(old) | set(kaggle_params)) if old.get(k) != kaggle_params.get(k)]
    if changed:
        raise UserError(f"{run_dir} was pushed with other parameters ({', '.join(changed[:5])}); "
                        "pass --fresh to start it over, or set another run_name")


def resume_points(spec: RunSpec, out_root: Path, params: dict, fresh: bool) -> dict[str, int]:
    """Notebooks whose last version stopped after a checkpoint that Kaggle keeps: notebook -> step.

    Not for a completed notebook (its checkpoint ends the run), nor with ``resume`` other than auto."""
    manifest = None if fresh else _load_manifest(out_root / spec.run_name, fresh)
    if manifest is None or str(params.get("resume", "auto")) != "auto":
        return {}
    points = {}
    for short in spec.notebooks:
        entry = manifest.data["notebooks"].get(short, {})
        if entry.get("checkpoint_step") and entry.get("status") != "completed":
            points[short] = int(entry["checkpoint_step"])
    return points


def prepare(args, specs, out_root, notebook_dir, creds, log) -> Push:
    """Everything before the first network call that changes anything: checks, wheel, renders, scan."""
    dry_run = getattr(args, "dry_run", False)
    upload = getattr(args, "upload_data", False)
    fresh = getattr(args, "fresh", False)
    repush = getattr(args, "repush", False)
    problems, data_checks = [], {}
    params = {spec.run_name: resolve_paths(spec) for spec in specs}
    for spec in specs:
        found = check_spec(spec, params[spec.run_name])
        problems += [f"{spec.params_file}: {p}" for p in found]
        if not any(p.startswith("dataset_path") for p in found):
            try:
                data_checks[spec.run_name] = check_data(params[spec.run_name])
            except DataError as exc:
                problems.append(f"{spec.params_file}: {exc}")
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
        check_run_folder(spec, out_root, kp, fresh, dry_run)

    resume = {spec.run_name: resume_points(spec, out_root, params[spec.run_name], fresh) for spec in specs}
    code = stage_code(out_root, username)
    plans = {spec.run_name: plan_kernels(spec, out_root, username, code, data[spec.run_name], notebook_dir,
                                         {s: kernel_ref(username, spec.run_name, s) for s in resume[spec.run_name]})
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
    for check in data_checks.values():
        if check is not None and check.warning:
            log(f"warning: {check.warning}")
    return Push(specs, username, code, data, upload, plans, kaggle_params, out_root, client, repush, resume,
                {run: c for run, c in data_checks.items() if c is not None})


def size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def print_plan(push: Push, log) -> None:
    code = push.code
    log("dry run: nothing was sent to Kaggle. A push would:")
    log(f"  - make sure the private data set {code.ref} holds build {code.build} "
        f"({code.wheel}, {size(code.folder / code.wheel)}), uploading a new version if not")
    for ref, ds in {d.ref: d for d in push.data.values() if d is not None}.items():
        if ds.local is None:
            log(f"  - attach the data set {ref} (read as {ds.kaggle_path})")
        elif push.upload_data:
            log(f"  - create or version the private data set {ref} from {rel(ds.local)} ({size(ds.local)}, "
                f"licence {ds.license})")
        else:
            log(f"  - attach the data set {ref}, which must exist (--upload-data creates it from {rel(ds.local)})")
    for run, check in push.data_checks.items():
        log(f"  - {run} reads {check.describe()}")
    for run, kernels in push.plans.items():
        for k in kernels:
            shape = k.metadata.get("machine_shape") or "CPU"
            when = f", after {', '.join(k.depends_on)} completes, with its output attached" if k.depends_on else ""
            step = push.resume.get(run, {}).get(k.short)
            when += f", resuming from its checkpoint at step {step} (its last output attached)" if step else ""
            log(f"  - push {k.ref} ({shape}, {'private' if k.metadata['is_private'] else 'PUBLIC'}{when})\n"
                f"      from {rel(k.folder)}/")
    log(f"W&B and Hugging Face keys reach the kernels only as Kaggle Secrets named {' and '.join(SECRETS)}.")
