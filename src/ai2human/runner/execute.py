"""Executing a run's notebooks with papermill into its folder, and recording how each one ended.

However the runner stops (a failed cell, Ctrl-C, SIGTERM, a full disk, a reader of its output that
went away) the manifest says so: it is never left "running".
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from ai2human.errors import UserError
from ai2human.rundir import KERNEL_LOG, now as _now
from ai2human.runner.lock import RunLock
from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS, RunSpec, dependencies
from ai2human.runner.precheck import check_run, resolve_paths
from ai2human.runner.runs import (
    describe_failure, missing_dependencies, open_run, peak_rss_mib, refuse_foreign, render_html, scan_run_folder,
)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the manifest records where the run stopped."""


class Console:
    """stdout that survives its reader going away (``run.py | head``): the run goes on, silently."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
            # Point the descriptor at /dev/null so Python's final flush does not complain either.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def flush(self) -> None:
        pass

    def __call__(self, message: str = "") -> None:
        self.write(f"{message}\n")


@contextlib.contextmanager
def _sigterm_as_interrupt():
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _quiet_kernel_manager(stderr_path: Path):
    """Kernels that keep the console clean: IPC sockets (no "running over TCP without encryption"
    warning per notebook, and code and outputs never cross a TCP port), and their own stderr (log
    lines, the zmq traceback of a kernel stopped by Ctrl-C) in ``stderr_path`` instead of the console.
    A cell's output still reaches the notebook: it travels over the kernel's sockets, not stderr."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(stderr_path, "ab") as log:
                kw["stderr"] = log
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return QuietKernelManager


def _save(manifest) -> bool:
    """Save the manifest; on a full disk overwrite it in place (no room for the temporary copy)."""
    try:
        manifest.save()
        return True
    except OSError:
        try:
            with open(manifest.path, "r+", encoding="utf-8") as f:
                f.write(json.dumps(manifest.data, default=str))
                f.truncate()
            return True
        except OSError:
            return False


def _set_aside_partial(output: Path) -> str | None:
    """A notebook cut off mid-write is not a report: rename it so nothing reads it as one."""
    if not output.is_file():
        return None
    try:
        json.loads(output.read_text(encoding="utf-8"))
        return output.name
    except (OSError, ValueError):
        partial = output.with_name(output.name + ".partial")
        output.replace(partial)
        return partial.name


def execute_run(
    spec: RunSpec,
    out_root: Path,
    fresh: bool = False,
    force: bool = False,
    stream: bool = False,
    notebook_dir: Path = NOTEBOOK_DIR,
    kernel_name: str = "python3",
    log=print,
) -> int:
    """Execute the run's notebooks into ``out_root/<run_name>``; 0 if all asked for completed, else 1 (130 if stopped)."""
    params = resolve_paths(spec)
    pairs = check_run(spec, params, force)
    run_dir = Path(out_root).resolve() / spec.run_name
    refuse_foreign(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    console = Console() if log is print else None
    log = console or log
    lock = RunLock(run_dir)
    try:
        lock.acquire()
        needed = sorted({d for short in spec.notebooks for d in dependencies(short, spec.params, _stages(spec)) if d not in spec.notebooks})
        if fresh and needed:  # checked before --fresh deletes anything
            raise UserError(f"--fresh deletes {', '.join(needed)}'s results, which {', '.join(spec.notebooks)} needs; "
                            f"run them together (--only {','.join(needed + spec.notebooks)}) or without --only")
        manifest = open_run(spec, params, run_dir, fresh, pairs)
        missing = [m for short in spec.notebooks
                   for m in missing_dependencies(manifest, short, [d for d in dependencies(short, spec.params, _stages(spec)) if d not in spec.notebooks])]
        if missing:
            raise UserError(f"{run_dir}: cannot run {', '.join(spec.notebooks)} yet: {'; '.join(missing)}")
    except UserError:
        lock.release()
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    try:
        with _sigterm_as_interrupt():
            return _run_notebooks(spec, params, manifest, notebook_dir, kernel_name, stream, log, console)
    finally:
        lock.release()


def _stages(spec: RunSpec) -> list[str]:
    """The run's notebooks as its file lists them plus any asked for by --only (the evaluation waits for
    prefer when either has it)."""
    return [*spec.meta.get("notebooks", []), *spec.notebooks]


def _run_notebooks(spec, params, manifest, notebook_dir, kernel_name, stream, log, console) -> int:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    run_dir = manifest.path.parent
    manifest.data["status"] = "running"
    invocation = {"started": _now(), "notebooks": list(spec.notebooks)}
    manifest.data["invocations"].append(invocation)
    manifest.save()
    log(f"run {spec.run_name}: {run_dir}")
    failed: set[str] = set()
    entry, output, t0 = None, None, time.perf_counter()
    try:
        for short in spec.notebooks:
            entry = manifest.notebook(short)
            output = run_dir / NOTEBOOKS[short]
            if entry.get("status") == "completed" and output.is_file():
                log(f"  {short}: completed in an earlier invocation, skipped (--fresh to redo)")
                continue
            blocked = [d for d in dependencies(short, spec.params, _stages(spec))
                       if d in failed or manifest.data["notebooks"].get(d, {}).get("status", "completed") != "completed"]
            if blocked:
                entry.update(status="skipped", reason=f"{', '.join(blocked)} did not complete")
                failed.add(short)
                manifest.save()
                log(f"  {short}: skipped because {', '.join(blocked)} did not complete")
                continue
            nb_params = {k: v for k, v in params.items() if k in spec.notebook_params(short)}
            nb_params["run_dir"] = str(run_dir)
            entry.update(status="running", started=_now(), error=None)
            entry.pop("reason", None)
            manifest.save()
            log(f"  {short}: executing {NOTEBOOKS[short]}")
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(notebook_dir / NOTEBOOKS[short]), str(output), parameters=nb_params, kernel_name=kernel_name,
                    cwd=str(run_dir), progress_bar=not stream, report_mode=False,
                    stdout_file=(console or sys.stdout) if stream else None, stderr_file=(console or sys.stderr) if stream else None,
                    kernel_manager_class=_quiet_kernel_manager(run_dir / KERNEL_LOG),
                )
                entry["status"] = "completed"
            except PapermillExecutionError as exc:
                entry.update(status="failed", error=describe_failure(exc))
                failed.add(short)
                err = entry["error"]
                log(f"  {short}: FAILED in cell {err['cell_index']} (`{err['cell_first_line']}`): "
                    f"{err['exception']}: {err['message']}\n    partial notebook kept: {output}")
            except (KeyboardInterrupt, OSError):
                raise
            except Exception as exc:  # the kernel died, a cell timed out...: this notebook failed, the run goes on
                entry.update(status="failed", error={"exception": type(exc).__name__, "message": str(exc).strip()[:300]})
                failed.add(short)
                log(f"  {short}: FAILED: {type(exc).__name__}: {str(exc).strip()[:300]}")
            entry.update(finished=_now(), wall_s=round(time.perf_counter() - t0, 1))
            if output.is_file():
                try:
                    entry["html"] = render_html(output).name
                except Exception as exc:  # nbconvert without its templates, say: the notebook is the report; keep going
                    entry["html_error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
                    log(f"  {short}: HTML copy not written ({entry['html_error']}); the executed notebook is the report")
            manifest.save()
            if entry["status"] == "completed":
                log(f"  {short}: completed in {entry['wall_s']:.1f} s -> {output.name}" + (f", {entry['html']}" if "html" in entry else ""))
        entry = None
        return _finish(spec, manifest, invocation, failed, log)
    except KeyboardInterrupt as exc:
        why = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        if entry is not None and entry.get("status") == "running":
            entry.update(status="interrupted", finished=_now(), wall_s=round(time.perf_counter() - t0, 1))
        manifest.data.update(status="interrupted", stopped_by=why)
        _save(manifest)
        log(f"  {why}; the next invocation resumes at the first notebook that did not complete")
        return 143 if isinstance(exc, Terminated) else 130
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            manifest.data.update(status="failed", cause=f"{type(exc).__name__}: {exc}"[:300])
            _save(manifest)
            raise
        cause = f"disk full (No space left on device) while writing {exc.filename or 'the run folder'}"
        if entry is not None:
            entry.update(status="failed", error={"exception": "OSError", "message": cause})
            kept = _set_aside_partial(output) if output is not None else None
            if kept:
                entry["partial_notebook"] = kept
        manifest.data.update(status="failed", cause=cause)
        saved = _save(manifest)
        raise UserError(f"{cause}; free some space and run the same command again to resume"
                        + ("" if saved else " (manifest.json could not be updated either)")) from None


def _finish(spec, manifest, invocation, failed, log) -> int:
    run_dir = manifest.path.parent
    kernel_log = run_dir / KERNEL_LOG
    if kernel_log.is_file() and kernel_log.stat().st_size == 0:
        kernel_log.unlink()  # the usual case: the kernels had nothing to say
    invocation["finished"] = _now()
    manifest.data["peak_rss_mib"] = peak_rss_mib()
    leaks = scan_run_folder(run_dir)
    if leaks:
        manifest.data["status"] = "credentials_found"
        manifest.data["credentials_found"] = leaks
        manifest.save()
        log("  credential-like strings found in the run folder; the run is not declared complete:\n    " + "\n    ".join(leaks))
        return 1
    statuses = {s: manifest.notebook(s).get("status") for s in manifest.data["notebooks"]}
    rest = [f"{s} ({st})" for s, st in statuses.items() if st != "completed"]
    if failed:
        manifest.data["status"] = "failed"
    else:
        manifest.data["status"] = "incomplete" if rest else "completed"
    manifest.save()
    total = sum(manifest.notebook(s).get("wall_s", 0) for s in spec.notebooks)
    log(f"run {spec.run_name}: {manifest.data['status']} ({total:.0f} s of notebooks); manifest: {manifest.path}")
    if manifest.data["status"] == "incomplete":
        log(f"  {', '.join(spec.notebooks)} completed; still to run in this folder: {', '.join(rest)}. "
            "Run the same params without --only to finish it")
    return 1 if failed else 0
