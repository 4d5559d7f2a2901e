"""Talking to Kaggle through the official client: credentials, retries, and the calls the runner makes.

Everything that crosses the network goes through :class:`Client`, which wraps
``kaggle.api.kaggle_api_extended.KaggleApi`` (never ``import kaggle`` directly: the package
authenticates when imported). Credentials are looked for without touching the network, so a
missing one is reported before any work is done.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from ai2human.errors import UserError

CREDENTIALS_HELP = """no Kaggle credentials found. Give them in one of three ways:
  1. environment variables KAGGLE_USERNAME and KAGGLE_KEY (kaggle.com > Settings > API > Create Legacy API Key)
  2. the file ~/.kaggle/kaggle.json that button downloads: {"username": "...", "key": "..."} (chmod 600 it)
  3. an access token (Settings > API > Generate New Token) in KAGGLE_API_TOKEN or the file ~/.kaggle/access_token
Never put them in a params file or a notebook."""

# Worth retrying: 409 (Kaggle answers it while a previous version of the kernel or dataset is
# still being saved), 429 (rate limit) and the gateway/server errors of a busy service.
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}
RETRY_BASE_S = 2.0  # first wait; doubles per attempt unless the server sends Retry-After
RETRY_MAX_S = 120.0
MAX_ATTEMPTS = 6


class KaggleError(Exception):
    """Kaggle refused or failed a request after retries (not a problem with the user's input)."""


@dataclass
class Credentials:
    method: str  # "environment", "kaggle.json", "access token" or "oauth"
    source: str  # where they were found, for messages
    username: str | None  # None for an access token until the server says whose it is


def _config_dir(environ) -> Path:
    if environ.get("KAGGLE_CONFIG_DIR"):
        return Path(environ["KAGGLE_CONFIG_DIR"])
    home = Path(environ.get("HOME") or Path.home())
    legacy = home / ".kaggle"
    # The client uses ~/.kaggle when it exists, else the XDG folder.
    if legacy.exists():
        return legacy
    return Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"


def find_credentials(environ=None) -> Credentials | None:
    """The credentials the official client would use, found without any network call."""
    environ = os.environ if environ is None else environ
    if environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY"):
        return Credentials("environment", "KAGGLE_USERNAME/KAGGLE_KEY", environ["KAGGLE_USERNAME"])
    home = Path(environ.get("HOME") or Path.home())
    config = _config_dir(environ)
    for path in dict.fromkeys([config / "kaggle.json", home / ".kaggle" / "kaggle.json"]):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("username") and data.get("key"):
            return Credentials("kaggle.json", str(path), data["username"])
    token = environ.get("KAGGLE_API_TOKEN")
    if token:
        return Credentials("access token", "KAGGLE_API_TOKEN", environ.get("KAGGLE_USERNAME"))
    for path in (home / ".kaggle" / "access_token", home / ".kaggle" / "access_token.txt"):
        if path.is_file() and path.read_text(encoding="utf-8").strip():
            return Credentials("access token", str(path), environ.get("KAGGLE_USERNAME"))
    oauth = home / ".kaggle" / "credentials.json"  # written by `kaggle auth login`
    if oauth.is_file():
        try:
            data = json.loads(oauth.read_text(encoding="utf-8"))
        except ValueError:
            data = {}
        if data.get("refresh_token"):
            return Credentials("oauth", str(oauth), data.get("username") or None)
    return None


def require_credentials(environ=None) -> Credentials:
    creds = find_credentials(environ)
    if creds is None:
        raise UserError(CREDENTIALS_HELP)
    return creds


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass
class PushResult:
    ref: str  # owner/slug
    version: int | None
    url: str


class Client:
    """The few Kaggle calls the runner makes, each retried on 409/429/5xx with backoff."""

    def __init__(self, log=print, sleep=time.sleep):
        self.log, self.sleep = log, sleep
        self.api = None
        self.username: str | None = None

    # ------------------------------------------------------------------ connection

    def connect(self) -> "Client":
        import requests

        with contextlib.redirect_stdout(io.StringIO()):
            # kaggle/__init__.py builds an api object and authenticates when the package is
            # imported, printing help when it cannot; our own check has already run.
            from kaggle.api.kaggle_api_extended import KaggleApi
        api = KaggleApi()
        # The client reads its config folder and KAGGLE_API_ENVIRONMENT once, when first
        # imported; read them again so they follow this process's current environment.
        api.config_dir = str(_config_dir(os.environ))
        api.config = os.path.join(api.config_dir, api.config_file)
        api.args = [a for a in api.args if a != "--local"]
        if os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST":
            api.args.append("--local")
        try:
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                api.authenticate()
        except SystemExit:
            raise UserError(CREDENTIALS_HELP) from None
        except requests.HTTPError as exc:
            raise self._http_error("checking the access token", exc) from None
        self.api = api
        self.username = api.get_config_value("username")
        if not self.username:
            raise UserError(f"Kaggle did not accept the credentials: {printed.getvalue().strip() or 'no username'}")
        return self

    def _http_error(self, what: str, exc) -> Exception:
        response = getattr(exc, "response", None)
        code = response.status_code if response is not None else None
        detail = ""
        if response is not None:
            try:
                detail = response.json().get("message", "")
            except ValueError:
                detail = response.text[:200]
        if code in (401, 403):
            return UserError(f"{what}: Kaggle answered HTTP {code} ({detail or 'unauthorized'}); "
                             "check the credentials (a Kaggle key can be revoked or expire)")
        return KaggleError(f"{what}: HTTP {code}: {detail or exc}")

    def call(self, what: str, fn, *args, **kwargs):
        """``fn(*args)``, retried with backoff when Kaggle says to try again later."""
        import requests

        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except requests.HTTPError as exc:
                code = exc.response.status_code if exc.response is not None else None
                if code not in RETRY_STATUSES or attempt == MAX_ATTEMPTS:
                    raise self._http_error(what, exc) from None
                delay = _retry_after(exc.response)
                reason = f"HTTP {code}"
            except requests.ConnectionError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise KaggleError(f"{what}: cannot reach Kaggle ({exc})") from None
                delay, reason = None, "connection failed"
            if delay is None:
                delay = min(RETRY_BASE_S * 2 ** (attempt - 1), RETRY_MAX_S)
            self.log(f"  {what}: {reason}; retrying in {delay:.1f} s (attempt {attempt + 1} of {MAX_ATTEMPTS})")
            self.sleep(delay)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ kernels

    def push_kernel(self, folder: Path) -> PushResult:
        meta = json.loads((Path(folder) / "kernel-metadata.json").read_text(encoding="utf-8"))
        response = self.call(f"pushing {meta['id']}", self.api.kernels_push, str(folder))
        if response.error:
            raise KaggleError(f"pushing {meta['id']}: Kaggle refused it: {response.error}")
        invalid = {
            "data sets": response.invalid_dataset_sources,
            "kernels": response.invalid_kernel_sources,
            "competitions": response.invalid_competition_sources,
        }
        bad = [f"{kind} {', '.join(refs)}" for kind, refs in invalid.items() if refs]
        if bad:
            raise KaggleError(f"pushing {meta['id']}: Kaggle cannot attach {'; '.join(bad)} "
                              "(not found, not yours, or still processing)")
        url = response.url or f"https://www.kaggle.com/code/{meta['id']}"
        return PushResult(meta["id"], response.version_number, url)

    @staticmethod
    def _versioned(ref: str, version: int | None) -> str:
        return f"{ref}/{version}" if version else ref

    def kernel_status(self, ref: str, version: int | None = None) -> tuple[str, str]:
        """``(status, failure message)``; status is QUEUED, RUNNING, COMPLETE, ERROR, CANCEL_*..."""
        response = self.call(f"status of {ref}", self.api.kernels_status, self._versioned(ref, version))
        status = getattr(response.status, "name", str(response.status))
        return status, response.failure_message or ""

    def download_output(self, ref: str, version: int | None, dest: Path, pattern: str | None = None) -> list[Path]:
        """The kernel's output files whose names match ``pattern`` (a regex), and its log, into ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        files, _ = self.call(f"downloading the output of {ref}", self.api.kernels_output,
                             self._versioned(ref, version), str(dest), file_pattern=pattern, force=True, quiet=True)
        return [Path(f) for f in files]

    # ------------------------------------------------------------------ data sets

    def dataset_status(self, ref: str) -> str | None:
        """'ready', 'failed', ... or None when the data set does not exist (or is not visible)."""
        import requests

        try:
            return self.api.dataset_status(ref)
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code in (403, 404):
                return None
            return self.call(f"status of data set {ref}", self.api.dataset_status, ref)

    def dataset_files(self, ref: str) -> list[str]:
        response = self.call(f"listing data set {ref}", self.api.dataset_list_files, ref, page_size=200)
        return [f.name for f in response.dataset_files or []]

    def upload_dataset(self, folder: Path, ref: str, notes: str) -> str:
        """Create the private data set in ``folder`` or add a version to it; returns 'created'/'versioned'."""
        exists = self.dataset_status(ref) is not None
        if exists:
            response = self.call(f"versioning data set {ref}", self.api.dataset_create_version,
                                 str(folder), notes, quiet=True)
        else:
            response = self.call(f"creating data set {ref}", self.api.dataset_create_new,
                                 str(folder), public=False, quiet=True)
        if response is None or response.error or str(response.status or "ok").lower() != "ok":
            raise KaggleError(f"uploading data set {ref}: {getattr(response, 'error', None) or 'Kaggle refused it'}")
        return "versioned" if exists else "created"

    def wait_dataset_ready(self, ref: str, timeout_s: float = 1800, interval_s: float = 5) -> None:
        """Kernels attach a data set's latest *ready* version, so pushing earlier would run old files."""
        start = time.monotonic()
        while True:
            status = (self.dataset_status(ref) or "missing").lower()
            if status == "ready":
                return
            if status in ("failed", "deleted"):
                raise KaggleError(f"data set {ref}: Kaggle could not process the upload (status {status})")
            if time.monotonic() - start > timeout_s:
                raise KaggleError(f"data set {ref} still '{status}' after {timeout_s / 60:.0f} min; "
                                  "rerun the same command later")
            self.sleep(interval_s)
            interval_s = min(interval_s * 1.5, 60)
