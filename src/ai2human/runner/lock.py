"""One runner per run folder: a second one on the same folder would interleave logs and results.

``fcntl.flock`` is released by the kernel when its holder dies (kill -9 included), so a lock
file left by a dead runner is simply taken over; the PID written into it is only for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ai2human.errors import UserError
from ai2human.rundir import LOCK


class RunLocked(UserError):
    """Another live runner holds the run folder."""


class RunLock:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(
                f"{self.path.parent} is in use by another runner (PID {holder}); wait for it to finish, "
                f"stop it (kill {holder}), or choose another run_name"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays, harmlessly
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
