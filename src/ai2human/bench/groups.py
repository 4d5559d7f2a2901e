"""Running the benchmark's worker processes: one backend/precision group of cases, with timeouts.

Every case has a timeout and the whole command a deadline, so a hang costs one case: a worker
that hangs or crashes is stopped and a fresh one runs the cases left, and what each case measured
before it stopped is kept as a partial result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ai2human.bench.cases import parse_case
from ai2human.errors import UserError

WORKER = "ai2human.bench.worker"  # the module each backend's process runs
SRC = Path(__file__).resolve().parents[2]
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
              "UNSLOTH_DISABLE_STATISTICS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
              "WANDB_MODE": "disabled"}


class Clock:
    def __init__(self, deadline_s: float):
        self.start = time.monotonic()
        self.deadline = self.start + deadline_s if deadline_s > 0 else None

    def left(self) -> float:
        return self.deadline - time.monotonic() if self.deadline else float("inf")


def worker_env() -> dict:
    env = {**os.environ, **WORKER_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return env


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """Terminate the worker's whole process group (it started its own session), then kill it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def read_events(path: Path, seen: int) -> tuple[list[dict], int]:
    """Events after the first ``seen`` lines, and the new count; a line still being written waits."""
    if not path.is_file():
        return [], seen
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    complete = lines if text.endswith("\n") else lines[:-1]
    new = []
    for line in complete[seen:]:
        try:
            new.append(json.loads(line))
        except ValueError:
            new.append({"event": "unreadable", "line": line[:200]})
    return new, len(complete)


def run_build(shape: str, model_dir: Path, work: Path, log: Path, clock: Clock, timeout: float) -> dict:
    out = work / "build.json"
    with log.open("a", encoding="utf-8") as f:
        proc = subprocess.Popen([sys.executable, "-m", "ai2human.bench.model", shape, str(model_dir), str(out)], cwd=work,
                                env=worker_env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=max(1.0, min(timeout, clock.left())))
        except subprocess.TimeoutExpired:
            stop(proc)
            raise UserError(f"building the {shape} model took more than {timeout:.0f} s (log: {log})") from None
    if proc.returncode != 0 or not out.is_file():
        raise UserError(f"building the {shape} model failed (exit {proc.returncode}); see {log}")
    return json.loads(out.read_text())


def run_group(backend: str, precision: str, cases: list[str], base_spec: dict, work: Path, log: Path, clock: Clock,
              args, min_start_s: float) -> tuple[list[dict], dict]:
    """Run one backend/precision's cases in worker processes; relaunch after a hang or crash while time is left."""
    group = {"backend": backend, "precision": precision, "attempts": 0, "log": log.name}
    runs: list[dict] = []
    remaining = list(cases)
    order = 0
    while remaining:
        if clock.left() < min_start_s:
            runs += [{"case": c, "status": "skipped", "error": "not started: the deadline was too close"} for c in remaining]
            break
        group["attempts"] += 1
        events = work / f"events-{backend}-{precision}-{group['attempts']}.jsonl"
        spec = {**base_spec, "backend": backend, "precision": precision, "cases": remaining, "events": str(events),
                "memory_cap_gib": args.memory_cap_gib if precision == "t4" else 0,
                "isolation_check": args.isolation_check == "on" or (args.isolation_check == "auto" and any(
                    parse_case(c).packing or parse_case(c).padding_free for c in remaining))}
        spec_path = work / f"spec-{backend}-{precision}.json"
        spec_path.write_text(json.dumps(spec))
        with log.open("a", encoding="utf-8") as f:
            f.write(f"\n===== {backend}/{precision} attempt {group['attempts']}: {', '.join(remaining)}\n")
            f.flush()
            proc = subprocess.Popen([sys.executable, "-m", WORKER, str(spec_path)], cwd=work,
                                    env=worker_env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        started, seen, current, since, loaded, why = time.monotonic(), 0, None, 0.0, None, ""
        done_before = len(runs)
        progress: dict[str, dict] = {}

        def handle(ev: dict) -> None:
            nonlocal current, since, loaded, order
            kind = ev.get("event")
            if kind == "progress":
                progress[ev["case"]] = {k: v for k, v in ev.items() if k not in ("event", "time", "case")}
                print(f"[bench] {backend}/{precision} {ev['case']}: step {ev.get('steps')}, {ev.get('s_per_step')} s/step, "
                      f"{ev.get('nonpad_tokens_per_s')} non-padding tokens/s", flush=True)
            elif kind == "loaded":
                loaded = {k: v for k, v in ev.items() if k not in ("event", "time")}
                group.update(loaded)
                print(f"[bench] {backend}/{precision}: loaded in {ev.get('load_s')} s + LoRA {ev.get('lora_s')} s; "
                      f"{ev.get('choice')}", flush=True)
            elif kind == "case_start":
                current, since = ev["case"], time.monotonic()
            elif kind == "case_done":
                order += 1
                run = {**ev["result"], "order": order}
                runs.append(run)
                if run["case"] in remaining:
                    remaining.remove(run["case"])
                current = None
                print(f"[bench] {backend}/{precision} {run['case']}: {run.get('status')}, {run.get('s_per_step')} s/step, "
                      f"{run.get('nonpad_tokens_per_s')} non-padding tokens/s, peak {run.get('peak_alloc_gib')} / "
                      f"{run.get('peak_reserved_gib')} GiB", flush=True)
            elif kind == "isolation":
                group["isolation"] = ev["result"]
            elif kind == "failed":
                group["error"] = ev.get("error")

        while True:
            exited = proc.poll() is not None  # read the events after learning of the exit: none is missed
            new, seen = read_events(events, seen)
            for ev in new:
                handle(ev)
            if exited:
                break
            now = time.monotonic()
            if clock.left() <= 0:
                why = "the deadline passed"
            elif current and now - since > (args.epoch_timeout if current.startswith("epoch") else args.case_timeout):
                why = f"the case ran over its timeout ({'--epoch-timeout' if current.startswith('epoch') else '--case-timeout'})"
            elif loaded is None and now - started > args.load_timeout:
                why = f"loading ran over --load-timeout {args.load_timeout:.0f} s"
            if why:
                stop(proc)
                for ev in read_events(events, seen)[0]:  # anything written just before it stopped
                    handle(ev)
                break
            time.sleep(0.5)
        if current:  # the case that was running when the worker died or was stopped
            order += 1
            # What the case measured before it stopped (progress events), kept as a partial result.
            partial = {f"partial_{k}" if k in ("steps",) else k: v for k, v in progress.get(current, {}).items()}
            runs.append({"case": current, "status": "timeout" if why else "crashed", **partial,
                         "error": why or f"worker exited with {proc.returncode} during the case; see {log.name}", "order": order})
            remaining.remove(current)
            if why.startswith("the deadline"):
                runs += [{"case": c, "status": "skipped", "error": why} for c in remaining]
                break
            continue  # a fresh worker for the cases left
        if remaining:  # stopped or exited between cases, or before any
            if why.startswith("the case"):
                continue  # the case finished just as it was stopped: the rest in a fresh worker
            if why:
                status, error = "skipped", why
            elif loaded is None:
                status, error = "error", group.get("error") or f"worker exited with {proc.returncode} before loading; see {log.name}"
            elif len(runs) > done_before:
                continue  # it finished some cases and then died: try the rest in a fresh worker
            else:
                status, error = "error", f"worker exited with {proc.returncode} without running a case; see {log.name}"
            runs += [{"case": c, "status": status, "error": error} for c in remaining]
            break
    params = base_spec["params"]
    for run in runs:
        case = (parse_case(run["case"], params["per_device_train_batch_size"], params["gradient_accumulation_steps"])
                if run.get("regime") is None else None)
        if case is not None:
            run.update(regime=case.regime, batching=case.batching, batch_size=case.batch_size, grad_accum=case.grad_accum)
        run.update(backend=backend, precision=precision, dtype=group.get("dtype"), load_in_4bit=group.get("load_in_4bit"),
                   memory_cap_gib=args.memory_cap_gib if precision == "t4" else 0, load_s=group.get("load_s"),
                   lora_s=group.get("lora_s"))
    return runs, group
