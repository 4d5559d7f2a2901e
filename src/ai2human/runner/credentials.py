"""Find credential-like strings in files before they leave this machine (or a run is declared done).

Two kinds of evidence: the shapes of known secrets, from Yelp's ``detect-secrets`` (AWS, GitHub,
OpenAI, Slack, private keys, passwords in URLs, ``*_API_KEY = "..."`` and some twenty more) plus the
few it lacks (Hugging Face, Kaggle, W&B, fine-grained GitHub and project OpenAI tokens, webhook
URLs, 32/40-hex values named like a key); and the literal values of the credentials this machine
holds (credential-named environment variables, ``kaggle.json`` and Kaggle's access-token file).
A finding names the file, the line and the kind of secret, never the secret itself.

detect-secrets' entropy detectors are left out: they flag every checksum and base64 image.

    from ai2human.runner.credentials import scan_paths
    for finding in scan_paths([Path("runs/v5")]):
        print(finding)          # runs/v5/kaggle/02_finetune/02_finetune.ipynb:41: Hugging Face token
"""

from __future__ import annotations

import bisect
import functools
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Shapes detect-secrets (1.5) does not know. A bare 32/40-hex string is not enough on its own (git
# commits and checksums have that shape: {"key": "<md5>"} is a cache entry), so it needs a name
# that says secret, or kaggle.json's "username" beside it.
_KEYISH = re.compile(r"(?i)(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|access[_-]?key|auth[_-]?key|[a-z0-9]_key)$")
_NOT_SECRET_KEYS = ("cache_key", "sort_key", "hash_key", "primary_key", "foreign_key", "partition_key")
# A name, then = or :, then 32 or 40 hex digits. Names start at a word start, so this stays linear.
_NAMED_HEX = re.compile(r"(?<![\w.-])([\w.-]{1,80})['\"\]]{0,2}\s*[:=]\s*['\"]?[0-9a-f]{32}(?:[0-9a-f]{8})?(?![0-9a-f])", re.I)
HEX_KIND = "hex secret next to a key-like name"
PATTERNS: list[tuple[str, re.Pattern]] = [
    ("Kaggle API key (kaggle.json)", re.compile(r'"username"\s*:\s*"[^"]*"\s*,\s*"key"\s*:\s*"[0-9a-f]{32}"|"key"\s*:\s*"[0-9a-f]{32}"\s*,\s*"username"')),
    ("Kaggle API key", re.compile(r"KAGGLE_KEY['\"\]]{0,2}\s*[:=]\s*['\"]?[0-9a-f]{32}\b")),
    ("Kaggle access token", re.compile(r"\bKGAT_[0-9A-Za-z]{20,}")),
    ("Hugging Face token", re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}")),
    ("W&B API key", re.compile(r"(?i)wandb[_-]?(?:api[_-]?)?key['\"\]]{0,2}\s*[:=,]\s*['\"]?[0-9a-f]{40}\b")),
    ("W&B API key", re.compile(r"\bwandb\s+login\s+(?:--\S+\s+)*[0-9a-f]{40}\b")),
    ("W&B API key (.netrc)", re.compile(r"api\.wandb\.ai\b.*\bpassword\s+[0-9a-f]{40}\b")),
    ("GitHub token", re.compile(r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{22,}")),
    ("OpenAI key", re.compile(r"(?<![A-Za-z0-9-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}")),
    ("webhook URL", re.compile(r"https://(?:discord(?:app)?\.com/api/webhooks|[\w.-]+\.webhook\.office\.com/webhookb2|hooks\.zapier\.com/hooks/catch)/\S{10,}")),
]
# Kinds that only say "something secret-looking": dropped on a line a specific kind already names.
GENERIC = {"Secret Keyword", HEX_KIND}
# detect-secrets' detectors that fire on ordinary data (checksums, base64 images, addresses). The
# Artifactory one takes "AP" + a hex digit + 8 letters or digits for a password: a model's generated
# text (eval_outputs.jsonl of a 7B run on the GPU machine) matched it, and no step here uses Artifactory.
NOISY = {"Base64 High Entropy String", "Hex High Entropy String", "Public IP (ipv4)", "Artifactory Credentials"}
_KEYWORD_HINT = re.compile(r"(?i)key|pass|pwd|secret|contras")
# Embedded images (a report's plots) are most of a notebook's bytes and hold no text: blank them.
_IMAGE_DATA = re.compile(r"(?:base64,|\"image/(?:png|jpeg|gif)\":\s*\")([A-Za-z0-9+/=]{200,})")
# A JSON string's escapes (\n, \t, \") glue the next word to a letter; blank them before matching.
_JSON_ESCAPE = re.compile(r"\\[nrtbf\"/\\]")
# Environment variables whose values are credentials. KAGGLE_USERNAME is not a secret (it is in
# every kernel id); GPG_KEY is the public fingerprint Python's docker images set.
CREDENTIAL_NAME = re.compile(r"(?i)(?:^|_)(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|APIKEY)(?:$|_)")
NOT_SECRET = {"GPG_KEY", "KAGGLE_USERNAME"}
MIN_SECRET_LENGTH = 12  # shorter values ("1", "true", a username) would match by coincidence
BINARY_PROBE = 8192
MAX_BINARY_BYTES = 64 << 20  # larger binaries are model weights, not where text hides
_PRINTABLE = re.compile(rb"[\x20-\x7e]{6,}")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int  # 0 for a binary file (its printable strings were scanned)
    kind: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}"


def _kaggle_config_dirs(environ) -> list[Path]:
    """Where the official client looks: $KAGGLE_CONFIG_DIR, else ~/.kaggle, else ~/.config/kaggle."""
    if environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(environ["KAGGLE_CONFIG_DIR"])]
    home = Path(environ.get("HOME") or Path.home())
    xdg = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [home / ".kaggle", xdg / "kaggle"]


def credential_values(environ=None) -> dict[str, str]:
    """The credentials this machine holds: ``value -> where it comes from``."""
    environ = os.environ if environ is None else environ
    values = {}
    for name, value in environ.items():
        if CREDENTIAL_NAME.search(name) and name not in NOT_SECRET and len(value.strip()) >= MIN_SECRET_LENGTH:
            values[value.strip()] = f"value of ${name}"
    for config in _kaggle_config_dirs(environ):
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
                values[token] = f"Kaggle access token from ~/{config.name}/{name}"
    return values


@functools.lru_cache(maxsize=1)
def _detectors():
    """detect-secrets' regex detectors as ``(kind, pattern)`` and its keyword detector."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.keyword import KeywordDetector

    regexes = []
    for kind, cls in get_mapping_from_secret_type_to_class().items():
        if kind not in NOISY and issubclass(cls, RegexBasedDetector):
            regexes += [(kind, re.compile(p.pattern, p.flags | re.M)) for p in cls().denylist]
    return PATTERNS + regexes, KeywordDetector()


def _values_pattern(values: dict[str, str], ignore_case: bool = False) -> re.Pattern | None:
    if not values:
        return None
    # Longest first, so a value that contains another is reported as itself.
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)), re.I if ignore_case else 0)


def _scan(text: str, values: dict[str, str], values_re, filename: str = "text.txt") -> list[tuple[int, str]]:
    """``(line, kind)`` hits in ``text``: each pattern runs once over the whole text (fast on big notebooks)."""
    # Neither holds a line break, so line numbers stay as they were.
    text = _JSON_ESCAPE.sub(" ", _IMAGE_DATA.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)], text))
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    regexes, keyword = _detectors()
    hits: set[tuple[int, str]] = set()
    for kind, pattern in regexes:
        for m in pattern.finditer(text):
            hits.add((bisect.bisect_right(starts, m.start()), kind))
    for m in _NAMED_HEX.finditer(text):
        name = m.group(1).lower()
        if _KEYISH.search(name) and not name.endswith(_NOT_SECRET_KEYS):
            hits.add((bisect.bisect_right(starts, m.start()), HEX_KIND))
    if values_re is not None:
        for m in values_re.finditer(text):
            hits.add((bisect.bisect_right(starts, m.start()), values.get(m.group(0), "a credential this machine holds")))
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) < 4000 and _KEYWORD_HINT.search(line):  # long lines are base64 images
            for secret in keyword.analyze_line(filename=filename, line=line, line_number=number):
                hits.add((number, secret.type))
    specific = {n for n, k in hits if k not in GENERIC}
    return sorted((n, k) for n, k in hits if k not in GENERIC or n not in specific)


def scan_text(text: str, values: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """``(line, kind)`` for each credential-like string in ``text``.

    ``values`` maps known secret values to a description; by default the ones this machine holds.
    """
    values = credential_values() if values is None else values
    return _scan(text, values, _values_pattern(values))


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_PROBE]


def _binary_strings(data: bytes) -> str:
    """The printable runs of a binary file: a joblib pickle keeps a TF-IDF vocabulary's words verbatim."""
    return "\n".join(m.group(0).decode("ascii") for m in _PRINTABLE.finditer(data))


def _scan_file(path: Path, values, values_re, values_re_i) -> list[Finding]:
    if zipfile.is_zipfile(path):  # a wheel or zip archive (a torch .pt too): the text inside it
        findings = []
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.is_dir() or member.file_size > MAX_BINARY_BYTES:
                    continue
                data = archive.read(member)
                if _is_binary(data):
                    continue
                text = data.decode("utf-8", errors="replace")
                findings += [Finding(f"{path}!{member.filename}", n, k) for n, k in _scan(text, values, values_re, member.filename)]
        return findings
    with open(path, "rb") as f:
        head = f.read(BINARY_PROBE)
    if _is_binary(head):
        if path.stat().st_size > MAX_BINARY_BYTES:
            return []
        # Lower-cased vocabularies hide upper-case values: match known values ignoring case here.
        hits = _scan(_binary_strings(path.read_bytes()), values, values_re_i, path.name)
        return [Finding(str(path), 0, f"{kind} (in binary data)") for kind in sorted({k for _, k in hits})]
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [Finding(str(path), n, k) for n, k in _scan(text, values, values_re, path.name)]


def scan_paths(paths, values: dict[str, str] | None = None) -> list[Finding]:
    """Credential-like strings in the given files (folders are walked; binaries by their printable strings)."""
    values = credential_values() if values is None else values
    values_re, values_re_i = _values_pattern(values), _values_pattern(values, ignore_case=True)
    findings: list[Finding] = []
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            findings += _scan_file(file, values, values_re, values_re_i)
    return findings
