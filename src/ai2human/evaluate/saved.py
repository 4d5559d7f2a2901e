"""The evaluation's fitted objects on disk (the detector, the yardstick): written atomically, and
read back with one clear line for every way a file can be missing or broken."""

from __future__ import annotations

from pathlib import Path

from ai2human.errors import UserError


def save(obj, path: str | Path) -> Path:
    """``joblib.dump`` through a temporary file, so a kill mid-write never leaves half a file."""
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    joblib.dump(obj, tmp)
    tmp.replace(path)
    return path


def load(path: str | Path, kind: type, missing: str):
    """The ``kind`` object saved at ``path``; ``missing`` is the message when there is no file."""
    import joblib

    path = Path(path)
    if not path.is_file():
        raise UserError(missing)
    try:
        obj = joblib.load(path)
    except Exception as exc:  # truncated, foreign or from an incompatible version: all "unreadable"
        raise UserError(f"{path} is unreadable ({type(exc).__name__}); re-run the evaluation notebook to write it again") from None
    if not isinstance(obj, kind):
        raise UserError(f"{path} holds a {type(obj).__name__}, not an ai2human {kind.__name__}")
    return obj
