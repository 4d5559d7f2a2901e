# Kaggle setup (kaggle/setup_cell.py, docs/kaggle.md). On Kaggle it installs ai2human, then
# ai2human.kaggle_setup reads Kaggle Secrets and finds the attached inputs; anywhere else (this
# machine, the runner) it does nothing, silently.
# The runner fills AI2HUMAN_KAGGLE when it pushes a run; opened by hand on Kaggle it stays empty.
AI2HUMAN_KAGGLE = {}
import os

if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):  # Kaggle sets it in every session

    def _ai2human_setup(config: dict, names: dict) -> None:
        import shutil
        import subprocess
        import sys
        from pathlib import Path

        # Without the code data set: this pip spec (set AI2HUMAN_PIP_SPEC above to use another).
        repository = "git+https://github.com/ai2human/ai2human"
        root = Path(os.environ.get("AI2HUMAN_KAGGLE_ROOT", "/kaggle"))  # only tests move it
        inputs = root / "input"

        def mounted(slug: str):
            """/kaggle/input/<slug>, or one to three levels deeper should Kaggle nest its mounts."""
            for pattern in (slug, f"*/{slug}", f"*/*/{slug}", f"*/*/*/{slug}"):
                found = sorted(p for p in inputs.glob(pattern) if p.is_dir())
                if found:
                    return found[0]
            return None

        # 1. The package: the exact build the runner uploaded, else the repository.
        code = mounted(config.get("code_slug", "ai2human-code"))
        build = config.get("build")
        if build and not (code and (code / f"build-{build}.json").is_file()):
            raise RuntimeError(f"Build {build} of ai2human is not in the attached data set "
                               f"{config.get('code_dataset', 'ai2human-code')} (not attached, or Kaggle mounted an "
                               "older version). Push again with `python runner/run.py PARAMS --kaggle`.")
        wheels = sorted(code.glob(config.get("wheel", "ai2human-*.whl"))) if code else []
        extras = config.get("extras", ["gpu"] if shutil.which("nvidia-smi") else [])
        extra = f"[{','.join(extras)}]" if extras else ""
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if wheels:
            # This exact build first (an earlier install may carry the same version number), then
            # its dependencies and extras; what Kaggle's image already satisfies is left alone.
            subprocess.run(pip + ["--no-deps", "--force-reinstall", str(wheels[-1])], check=True)
            spec = f"{wheels[-1]}{extra}"
        else:
            spec = os.environ.get("AI2HUMAN_PIP_SPEC") or f"ai2human{extra} @ {repository}"
        if subprocess.run(pip + [spec]).returncode != 0:
            raise RuntimeError(f"pip could not install {spec}: turn Internet on (Settings), or attach the code "
                               "data set <you>/ai2human-code that `python runner/run.py PARAMS --kaggle` uploads")

        # 2-4. Secrets, earlier outputs and the data: in the package, now that it is installed.
        import importlib

        importlib.invalidate_caches()
        from ai2human.kaggle_setup import finish

        finish(config, names, root=root, code=code, spec=spec)

    _ai2human_setup(AI2HUMAN_KAGGLE, globals())
