"""Kaggle's naming rules for what the runner creates: slugs, OWNER/SLUG references, kernel titles."""

from __future__ import annotations

import re

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9]+(?:-[a-z0-9]+)*$")
PLACEHOLDER_USER = "your-kaggle-username"  # the owner shown by a dry run without credentials


def slugify(text: str) -> str:
    """Kaggle's slug of a title, with the same library the official client uses."""
    from slugify import slugify as _slugify

    return _slugify(text)


def kernel_title(run_name: str, short: str) -> str:
    return f"ai2human {run_name} {short}"


def kernel_ref(username: str, run_name: str, short: str) -> str:
    """``<you>/ai2human-<run>-<notebook>``: the title slugifies to the id, as Kaggle requires."""
    return f"{username}/{slugify(kernel_title(run_name, short))}"
