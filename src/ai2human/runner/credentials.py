"""Find credential-like strings in files before they leave this machine (or a run is declared done).

Two kinds of evidence: the shapes of known secrets (a Kaggle ``kaggle.json`` key, Kaggle access
tokens, Hugging Face ``hf_`` tokens, W&B keys next to their name, PEM private keys), and the
literal values of the credentials this machine holds (credential-named environment variables,
``~/.kaggle/kaggle.json``, Kaggle's access-token file). A finding names the file, the line and the
kind of secret, never the secret itself.

    from ai2human.runner.credentials import scan_paths
    for finding in scan_paths([Path("runs/v5")]):
        print(finding)          # runs/v5/kaggle/02_finetune/02_finetune.ipynb:41: Hugging Face token
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Shapes that are secrets wherever they appear. Bare 32/40-hex strings are not enough on their
# own (git commits and checksums have that shape), so Kaggle and W&B keys need their name nearby.
PATTERNS: list[tuple[str, re.Pattern]] = [
    ("Kaggle API key (kaggle.json)", re.compile(r'"key"\s*:\s*"[0-9a-f]{32}"')),
    ("Kaggle API key", re.compile(r"KAGGLE_KEY['\"\]]{0,2}\s*[:=]\s*['\"]?[0-9a-f]{32}\b")),
    ("Kaggle access token", re.compile(r"\bKGAT_[0-9A-Za-z]{20,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("W&B API key", re.compile(r"(?i)wandb[_-]?(?:api[_-]?)?key['\"\]]{0,2}\s*[:=,]\s*['\"]?[0-9a-f]{40}\b")),
    ("W&B API key", re.compile(r"\bwandb\s+login\s+(?:--\S+\s+)*[0-9a-f]{40}\b")),
    ("W&B API key (.netrc)", re.compile(r"api\.wandb\.ai\b.*\bpassword\s+[0-9a-f]{40}\b")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
]
# Environment variables whose values are credentials. KAGGLE_USERNAME is not a secret (it is in
# every kernel id); GPG_KEY is the public fingerprint Python's docker images set.
CREDENTIAL_NAME = re.compile(r"(?i)(?:^|_)(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)(?:$|_)")
NOT_SECRET = {"GPG_KEY", "KAGGLE_USERNAME"}
MIN_SECRET_LENGTH = 12  # shorter values ("1", "true", a username) would match by coincidence
BINARY_PROBE = 8192


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}"


def _kaggle_config_dir(environ) -> Path:
    if environ.get("KAGGLE_CONFIG_DIR"):
        return Path(environ["KAGGLE_CONFIG_DIR"])
    return Path(environ.get("HOME") or Path.home()) / ".kaggle"


def credential_values(environ=None) -> dict[str, str]:
    """The credentials this machine holds: ``value -> where it comes from``."""
    environ = os.environ if environ is None else environ
    values = {}
    for name, value in environ.items():
        if CREDENTIAL_NAME.search(name) and name not in NOT_SECRET and len(value.strip()) >= MIN_SECRET_LENGTH:
            values[value.strip()] = f"value of ${name}"
    config = _kaggle_config_dir(environ)
    try:
        key = json.loads((config / "kaggle.json").read_text(encoding="utf-8")).get("key", "")
        if len(key) >= MIN_SECRET_LENGTH:
            values[key] = "Kaggle key from kaggle.json"
    except (OSError, ValueError, AttributeError):
        pass
    for name in ("access_token", "access_token.txt"):
        try:
            token = (config / name).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if len(token) >= MIN_SECRET_LENGTH:
            values[token] = f"Kaggle access token from ~/.kaggle/{name}"
    return values


def _values_pattern(values: dict[str, str]) -> re.Pattern | None:
    if not values:
        return None
    # Longest first, so a value that contains another is reported as itself.
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


def _scan_lines(lines, values: dict[str, str], values_re: re.Pattern | None) -> list[tuple[int, str]]:
    hits = []
    for number, line in enumerate(lines, start=1):
        for kind, pattern in PATTERNS:
            if pattern.search(line):
                hits.append((number, kind))
        if values_re is not None:
            match = values_re.search(line)
            if match:
                hits.append((number, values[match.group(0)]))
    return hits


def scan_text(text: str, values: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """``(line, kind)`` for each credential-like string in ``text``.

    ``values`` maps known secret values to a description; by default the ones this machine holds.
    """
    values = credential_values() if values is None else values
    return _scan_lines(text.splitlines(), values, _values_pattern(values))


def _is_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"\0" in f.read(BINARY_PROBE)


def _scan_file(path: Path, values, values_re) -> list[Finding]:
    if zipfile.is_zipfile(path):  # a wheel or zip archive (a torch .pt too): the text inside it
        findings = []
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.is_dir():
                    continue
                with archive.open(member) as f:  # peek first: tensors can be gigabytes
                    if b"\0" in f.read(BINARY_PROBE):
                        continue
                with archive.open(member) as f:
                    lines = io.TextIOWrapper(f, encoding="utf-8", errors="replace")
                    findings += [Finding(f"{path}!{member.filename}", n, k) for n, k in _scan_lines(lines, values, values_re)]
        return findings
    if _is_binary(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        return [Finding(str(path), n, k) for n, k in _scan_lines(f, values, values_re)]


def scan_paths(paths, values: dict[str, str] | None = None) -> list[Finding]:
    """Credential-like strings in the given files (folders are walked; binary files are skipped)."""
    values = credential_values() if values is None else values
    values_re = _values_pattern(values)
    findings: list[Finding] = []
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            findings += _scan_file(file, values, values_re)
    return findings
