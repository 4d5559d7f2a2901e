# Kaggle setup, inserted by `python runner/run.py ... --kaggle` right after the parameters. The
# committed notebook has no such cell and local runs never see it; off Kaggle it does nothing.
# On Kaggle it installs the exact ai2human build the runner uploaded (a wheel in a private data
# set) with the pinned GPU stack, reads the W&B and Hugging Face keys from Kaggle Secrets (W&B
# logs offline without one), and points the paths at what Kaggle mounted under /kaggle/input.
KAGGLE_SETUP = {}  # filled in by the runner when it renders the notebook


def _kaggle_setup(setup: dict, names: dict) -> None:
    import importlib
    import os
    import subprocess
    import sys
    from importlib.metadata import version
    from pathlib import Path

    if not os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):  # Kaggle sets it in every session
        print("Not on Kaggle: nothing to set up.")
        return
    # AI2HUMAN_KAGGLE_ROOT is for the test that runs this cell off Kaggle; Kaggle never sets it.
    root = Path(os.environ.get("AI2HUMAN_KAGGLE_ROOT", "/kaggle"))
    inputs = root / "input"

    def on_this_machine(path: str) -> str:
        return str(root / path[len("/kaggle/"):]) if path.startswith("/kaggle/") else path

    def mounted(slug: str, name: str = ""):
        """A source is mounted at /kaggle/input/<slug>/; look deeper in case the layout changes."""
        direct = inputs / slug / name
        if direct.exists():
            return direct
        candidates = inputs.rglob(name or slug) if inputs.is_dir() else []
        found = sorted(p for p in candidates if (p.parent.name if name else p.name) == slug)
        return found[0] if found else None

    marker = mounted(setup["code_slug"], setup["build_marker"])
    if marker is None:
        raise RuntimeError(
            f"Build {setup['build']} of ai2human is not in the attached data set {setup['code_dataset']} "
            "(not attached, or Kaggle mounted an older version). Push again with "
            "`python runner/run.py PARAMS --kaggle`: it uploads the build and waits until it is ready."
        )
    wheel = str(marker.parent / setup["wheel"])
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # This exact build first (an earlier install may carry the same version number), then its
    # dependencies and the GPU stack; what Kaggle's image already satisfies is left alone.
    subprocess.run(pip + ["--no-deps", "--force-reinstall", wheel], check=True)
    subprocess.run(pip + setup["pip"] + [wheel], check=True)
    importlib.invalidate_caches()

    try:
        from kaggle_secrets import UserSecretsClient

        secrets = UserSecretsClient()
    except ImportError:
        secrets = None
    found = []
    for name in setup["secrets"]:
        if secrets is None or os.environ.get(name):
            continue
        try:
            os.environ[name] = secrets.get_secret(name)
            found.append(name)
        except Exception:  # not attached to this notebook (Add-ons > Secrets)
            pass
    if not os.environ.get("WANDB_API_KEY"):
        os.environ["WANDB_MODE"] = "offline"  # the run is kept in the output; `wandb sync` uploads it later

    names["run_dir"] = on_this_machine(str(names.get("run_dir") or "/kaggle/working"))
    data = str(names.get("dataset_path") or "")
    if data:
        data = on_this_machine(data)
        if not Path(data).exists():
            data = str(mounted(setup["data_slug"], Path(data).name) or data)
        names["dataset_path"] = data
    # A notebook that reads an earlier notebook's artifacts finds them in run_dir, as in a local run.
    run_dir = Path(names["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    for slug in setup["kernel_sources"]:
        source = mounted(slug)
        if source is None:
            raise RuntimeError(f"The output of {slug} is not attached; push that notebook first.")
        for entry in sorted(source.iterdir()):
            target = run_dir / entry.name
            if not entry.name.startswith("__") and entry.suffix != ".log" and not target.exists():
                target.symlink_to(entry, target_is_directory=entry.is_dir())

    print(f"ai2human {version('ai2human')} (build {setup['build']}) installed from {wheel}")
    print(f"GPU stack: {', '.join(setup['pip']) or 'not needed here'}")
    print(f"Kaggle Secrets: {', '.join(found) or 'none attached'}; W&B {os.environ.get('WANDB_MODE', 'online')}")
    print(f"run_dir: {names['run_dir']}" + (f"\ndataset_path: {data}" if data else ""))


_kaggle_setup(KAGGLE_SETUP, globals())
