"""Following pushed kernels: one live status line, polling with backoff, pushing what waited for
an input, fetching what finished, and the closing summary."""

from __future__ import annotations

import shutil
import sys
import time
from datetime import datetime, timezone

from ai2human.rundir import Manifest, now
from ai2human.runner.kaggle.api import Client
from ai2human.runner.kaggle.fetching import fetch
from ai2human.runner.kaggle.pushing import push_one
from ai2human.runner.kaggle.tracking import ACTIVE, DONE, FROM_KAGGLE, Tracked, rel, since

MAX_POLL_S = 300.0  # polite ceiling between status checks while nothing changes


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
        return f"{t.short} {e.get('kaggle_status') or e['status'].upper()} {since(e.get('pushed'))}"
    return f"{t.short} {e['status']}"


def _line(tracked: list[Tracked], started: float) -> str:
    runs: dict[str, list[str]] = {}
    for t in tracked:
        runs.setdefault(t.run_name, []).append(_describe(t))
    elapsed = int(time.monotonic() - started)
    return f"[{elapsed // 60}:{elapsed % 60:02d}] " + " | ".join(f"{run}: {' · '.join(parts)}" for run, parts in runs.items())


def follow(client: Client, tracked: list[Tracked], poll: float, log) -> int:
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
            if all(t.settled() for t in tracked):
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
        failed = [d for d, de in zip(t.depends_on, deps) if de["status"] in DONE - {"completed"} or de.get("fetch_failed")]
        if failed:
            e.update(status="skipped", reason=f"{', '.join(failed)} did not complete")
            t.manifest.save()
            emit(f"{t.name}: skipped because {', '.join(failed)} did not complete")
            return True
        if all(de["status"] == "completed" and de.get("fetched") for de in deps):
            push_one(client, t, build, emit)
            return True
        return False
    if e["status"] == "completed" and not e.get("fetched") and not e.get("fetch_failed"):
        fetch(client, t, emit)  # a fetch that failed on an earlier call
        return True
    if e["status"] not in ACTIVE:
        return False
    status, message = client.kernel_status(t.ref, e.get("version"))
    if status == e.get("kaggle_status"):
        return False
    e["kaggle_status"] = status
    e["status"] = FROM_KAGGLE.get(status, "running")
    if e["status"] in DONE:
        e.update(finished=now(), wall_s=round((datetime.now(timezone.utc) - datetime.fromisoformat(e["pushed"])).total_seconds()))
    t.manifest.save()
    emit(f"{t.name}: {status} after {since(e.get('pushed'))}")
    if e["status"] == "completed":
        fetch(client, t, emit)
    elif e["status"] in ("failed", "cancelled"):
        fetch(client, t, emit, failure=message or status)
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


def _summary(tracked: list[Tracked], emit) -> int:
    ok = True
    for manifest in {id(t.manifest): t.manifest for t in tracked}.values():
        _settle(manifest)
        run_dir = manifest.path.parent
        emit(f"run {manifest.data['run_name']}: {manifest.data['status']} ({rel(manifest.path)})")
        for short, e in manifest.data["notebooks"].items():
            where = f" -> {rel(run_dir / e['html'])}" if e.get("html") else ""
            reason = f" ({e['reason']})" if e.get("reason") else ""
            if e.get("fetch_failed"):
                reason += " (its output could not be downloaded)"
            kept = e.get("previous", {}).get("output_dir")
            if kept and not e.get("html"):
                where = f"; the earlier version's output is kept in {rel(run_dir / kept)}"
            emit(f"  {short}: {e['status']}{reason}{where}")
        ok &= manifest.data["status"] == "completed" and not any(
            e.get("fetch_failed") for e in manifest.data["notebooks"].values())
    return 0 if ok else 1
