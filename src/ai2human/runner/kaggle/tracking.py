"""A kernel being followed: its place in the run's manifest, and the few words used to report it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ai2human.errors import UserError
from ai2human.rundir import MANIFEST, Manifest, ManifestError

ACTIVE = {"queued", "running"}
DONE = {"completed", "failed", "cancelled", "skipped"}
FROM_KAGGLE = {"QUEUED": "queued", "NEW_SCRIPT": "queued", "RUNNING": "running", "COMPLETE": "completed",
               "ERROR": "failed", "CANCEL_REQUESTED": "cancelled", "CANCEL_ACKNOWLEDGED": "cancelled"}


@dataclass
class Tracked:
    """One kernel being followed; its state lives in the run's manifest."""

    manifest: Manifest
    short: str
    folder: Path  # runs/<run>/kaggle/<notebook>/
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

    @property
    def run_dir(self) -> Path:
        return self.manifest.path.parent

    def dep_entries(self) -> list[dict]:
        return [self.manifest.data["notebooks"][d] for d in self.depends_on]

    def settled(self) -> bool:
        """Nothing left to do for it: finished, and its output fetched (or given up on)."""
        e = self.entry
        return e["status"] in DONE and (e["status"] != "completed" or bool(e.get("fetched") or e.get("fetch_failed")))


def since(iso: str | None) -> str:
    if not iso:
        return ""
    seconds = int((datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def rel(path: Path) -> str:
    """A path as the user would type it from here."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def pushed_manifest(out_root: Path, run: str, flag: str) -> Manifest:
    """The manifest of a run pushed to Kaggle, or UserError naming the runs that were."""
    try:
        manifest = Manifest.load(out_root / run)
    except ManifestError as exc:
        raise UserError(f"{flag} {run}: {exc}; it cannot be followed or pulled (push it again with --fresh)") from None
    if manifest is None or manifest.data.get("executor") != "kaggle":
        pushed = []
        for path in sorted(out_root.glob(f"*/{MANIFEST}")):
            try:
                if json.loads(path.read_text(encoding="utf-8")).get("executor") == "kaggle":
                    pushed.append(path.parent.name)
            except (OSError, ValueError, AttributeError):
                continue
        raise UserError(f"{flag} {run}: {out_root / run} is not a run pushed to Kaggle; "
                        f"pushed runs under {out_root}: {', '.join(pushed) or 'none'}")
    return manifest
