"""What the chat app serves: a run folder (or an adapter), checked before anything heavy loads.

``read_run`` resolves the adapter, the base model and the settings, and refuses in a second what
would otherwise fail minutes later with a traceback: a missing or corrupt adapter, a corrupt
``adapter_config.json``. Settings come from the run's manifest (the parameters it ran with), else
``SERVING_DEFAULTS``, the evaluation notebook's defaults (the library never reads the runner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ai2human.errors import UserError
from ai2human.rundir import ADAPTER, DETECTOR, EVAL_METRICS, MANIFEST, YARDSTICK

# The evaluation notebook's defaults for what the app needs (tests/test_app.py keeps them equal to
# 03_evaluate's parameters cell): used only for an adapter served without a run folder.
SERVING_DEFAULTS = {"model_name": "unsloth/Qwen2.5-7B", "tokenizer_name": "", "max_seq_length": 2048, "backend": "auto",
                    "load_in_4bit": True, "max_new_tokens": 512, "temperature": 0.7, "top_p": 0.9}
RUN_PARAMS = tuple(SERVING_DEFAULTS)
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
CREDENTIALS_FOUND = "credentials_found"  # the runner's manifest status when its scan flagged a file


@dataclass
class RunConfig:
    """Everything the app needs from a run folder (or from ``--adapter``/``--base``)."""

    adapter_dir: Path
    params: dict  # RUN_PARAMS, from the manifest or SERVING_DEFAULTS
    run_dir: Path | None = None
    manifest: dict = field(default_factory=dict)
    eval_metrics: dict = field(default_factory=dict)

    def _artifact(self, name: str) -> Path | None:
        path = self.run_dir / name if self.run_dir else None
        return path if path and path.is_file() else None

    @property
    def yardstick_path(self) -> Path | None:
        return self._artifact(YARDSTICK)

    @property
    def detector_path(self) -> Path | None:
        return self._artifact(DETECTOR)

    @property
    def name(self) -> str:
        return str(self.manifest.get("run_name") or (self.run_dir.name if self.run_dir else self.adapter_dir.name))

    @property
    def credentials_warning(self) -> str:
        """Non-empty when the run's own scan found credential-like strings in its files."""
        if self.manifest.get("status") != CREDENTIALS_FOUND and not self.manifest.get("credentials_found"):
            return ""
        files = self.manifest.get("credentials_found") or []
        return (f"run {self.name} was flagged by its credentials scan ({len(files)} file(s)); its outputs may "
                "hold a secret: rotate it and do not share this page")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); re-run the notebook that writes it") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a JSON object; re-run the notebook that writes it")
    return data


def check_adapter(adapter: Path) -> str:
    """The base model the adapter records; UserError when its config or weights are missing or corrupt."""
    config_path = adapter / "adapter_config.json"
    if not config_path.is_file():
        raise UserError(f"{adapter} holds no LoRA adapter (no adapter_config.json); run the fine-tuning notebook first")
    config = _read_json(config_path)
    base = config.get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise UserError(f"{config_path} names no base model (base_model_name_or_path); re-save the adapter")
    weights = [adapter / w for w in ADAPTER_WEIGHTS if (adapter / w).is_file()]
    if not weights:
        raise UserError(f"{adapter} has adapter_config.json but no weights ({' or '.join(ADAPTER_WEIGHTS)}); "
                        "the adapter was not saved completely: re-run the fine-tuning notebook")
    if weights[0].suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(weights[0]), framework="pt") as f:
                for key in f.keys():
                    f.get_slice(key)  # reads each tensor's header: a cut-off file fails here
        except Exception as exc:  # safetensors raises its own error types for a truncated or foreign file
            raise UserError(f"{weights[0]} is corrupt ({type(exc).__name__}: {str(exc)[:100]}); re-run the fine-tuning notebook") from None
    return base


def read_run(run_dir: str | Path | None = None, adapter: str | Path | None = None, base: str = "") -> RunConfig:
    """Resolve what to serve without loading anything heavy, so a bad path fails in a second.

    The base model is ``base`` if given, else the run's ``model_name``, else the one recorded in the
    adapter's config; settings come from the run's manifest, else ``SERVING_DEFAULTS``.
    """
    manifest, eval_metrics = {}, {}
    if run_dir is not None:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UserError(f"no run folder at {run_dir}; make one with `python runner/run.py params/demo.yaml`")
        manifest = _read_json(run_dir / MANIFEST)
        eval_metrics = _read_json(run_dir / EVAL_METRICS)
        adapter = Path(adapter) if adapter else run_dir / ADAPTER
        if not (adapter / "adapter_config.json").is_file():
            raise UserError(f"run folder {run_dir} has no adapter ({adapter} holds no adapter_config.json); "
                            "run the fine-tuning notebook first (python runner/run.py PARAMS --only finetune)")
    elif adapter is None:
        raise UserError("say what to serve: --run RUN_FOLDER, or --adapter ADAPTER_FOLDER [--base MODEL]")
    adapter = Path(adapter)
    recorded_base = check_adapter(adapter)
    run_params = manifest.get("params", {}) if isinstance(manifest.get("params"), dict) else {}
    params = SERVING_DEFAULTS | {k: run_params[k] for k in RUN_PARAMS if k in run_params}
    params["model_name"] = base or run_params.get("model_name") or recorded_base
    return RunConfig(adapter, params, run_dir, manifest, eval_metrics)
