"""Talking to Kaggle through the official client: retries, error messages, and the calls the runner makes.

Everything that crosses the network goes through :class:`Client`, which wraps
``kaggle.api.kaggle_api_extended.KaggleApi`` (never ``import kaggle`` directly: the package
authenticates when imported). Credentials are found first, without the network (``auth``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from ai2human.errors import UserError
from ai2human.runner.kaggle.auth import CREDENTIALS_HELP, config_dir

# Worth retrying: 409 (Kaggle answers it while a previous version of the kernel or dataset is
# still being saved), 429 (rate limit) and the gateway/server errors of a busy service.
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}
RETRY_BASE_S = 2.0  # first wait; doubles per attempt unless the server sends Retry-After
# A Retry-After above this is cut to it (and the log says so): an hour-long wait asked for by a
# proxy or a misconfigured gateway would look like a hung runner; polling again is cheap.
RETRY_MAX_S = 120.0
MAX_ATTEMPTS = 6
# Right after a push Kaggle can answer 404 for the new version's status for a few seconds.
STATUS_404_ATTEMPTS = 4


class KaggleError(Exception):
    """Kaggle refused or failed a request after retries (not a problem with the user's input)."""


class KaggleUnreachable(UserError):
    """No answer from Kaggle at all (network, proxy, DNS): one line and exit 2, not a traceback."""


@dataclass
class PushResult:
    ref: str  # owner/slug
    version: int | None
    url: str


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


def _connection_reason(exc) -> str:
    """The root cause of a requests ConnectionError ("Connection refused"), not its 400-character repr."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text) or re.findall(r"(Name or service not known|timed out)", text)
    return found[-1].strip() if found else text[:120]


def _kaggle_says(response) -> str:
    if response is None:
        return ""
    try:
        body = response.json()
        return str(body.get("message") or body.get("error") or "") if isinstance(body, dict) else ""
    except ValueError:
        return response.text[:200].strip()


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
        api.config_dir = str(config_dir(os.environ))
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
        except requests.ConnectionError as exc:
            raise self._unreachable("checking the access token", exc) from None
        self.api = api
        self.username = api.get_config_value("username")
        if not self.username:
            raise UserError(f"Kaggle did not accept the credentials: {printed.getvalue().strip() or 'no username'}")
        return self

    @staticmethod
    def _unreachable(what: str, exc) -> KaggleUnreachable:
        return KaggleUnreachable(f"{what}: cannot reach Kaggle ({_connection_reason(exc)}); check the network or "
                                 "proxy settings and run the same command again (kernels already pushed keep running; "
                                 "`--follow RUN` picks them up)")

    @staticmethod
    def _http_error(what: str, exc, pushing: bool = False) -> Exception:
        response = getattr(exc, "response", None)
        code = response.status_code if response is not None else None
        said = _kaggle_says(response)
        if code == 403 and pushing:
            # A valid key also gets 403 here when the account cannot run this kernel.
            return UserError(f"{what}: Kaggle refused the push (HTTP 403: {said or 'forbidden'}). With a working key "
                             "this usually means the account cannot run it: GPU kernels and internet access need a "
                             "phone-verified account (kaggle.com > Settings > Phone verification), and the weekly GPU "
                             "quota may be used up (see kaggle.com > Settings > Quotas); otherwise check the credentials")
        if code in (401, 403):
            return UserError(f"{what}: Kaggle answered HTTP {code} ({said or 'unauthorized'}); "
                             "check the credentials (a Kaggle key can be revoked or expire)")
        return KaggleError(f"{what}: HTTP {code}: {said or exc}")

    def call(self, what: str, fn, *args, retry_404: int = 0, pushing: bool = False, **kwargs):
        """``fn(*args)``, retried with backoff when Kaggle says to try again later (or, with
        ``retry_404``, that what was just created is not there yet)."""
        import requests

        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except requests.HTTPError as exc:
                code = exc.response.status_code if exc.response is not None else None
                transient = code in RETRY_STATUSES or (code == 404 and attempt < retry_404)
                if not transient or attempt == MAX_ATTEMPTS:
                    raise self._http_error(what, exc, pushing) from None
                delay = _retry_after(exc.response)
                reason = f"HTTP {code}"
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                if attempt == MAX_ATTEMPTS:
                    raise self._unreachable(what, exc) from None
                delay, reason = None, f"connection failed ({_connection_reason(exc)})"
            if delay is not None and delay > RETRY_MAX_S:
                reason += f", Kaggle asked to wait {delay:.0f} s (capped at {RETRY_MAX_S:.0f} s)"
                delay = RETRY_MAX_S
            if delay is None:
                delay = min(RETRY_BASE_S * 2 ** (attempt - 1), RETRY_MAX_S)
            self.log(f"  {what}: {reason}; retrying in {delay:.1f} s (attempt {attempt + 1} of {MAX_ATTEMPTS})")
            self.sleep(delay)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ kernels

    def push_kernel(self, folder: Path) -> PushResult:
        meta = json.loads((Path(folder) / "kernel-metadata.json").read_text(encoding="utf-8"))
        response = self.call(f"pushing {meta['id']}", self.api.kernels_push, str(folder), pushing=True)
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
        response = self.call(f"status of {ref}", self.api.kernels_status, self._versioned(ref, version),
                             retry_404=STATUS_404_ATTEMPTS)
        status = getattr(response.status, "name", str(response.status))
        return status, response.failure_message or ""

    def download_output(self, ref: str, version: int | None, dest: Path, pattern: str | None = None) -> list[Path]:
        """The kernel's output files whose names match ``pattern`` (a regex), and its log, into ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        what = f"downloading the output of {ref}"
        try:
            files, _ = self.call(what, self.api.kernels_output, self._versioned(ref, version), str(dest),
                                 file_pattern=pattern, force=True, quiet=True)
        except ValueError as exc:  # the client's own refusals: a 401/403, a file name outside dest
            raise KaggleError(f"{what}: {exc}") from None
        return [Path(f) for f in files]

    def pull_kernel(self, ref: str, dest: Path) -> Path:
        """The kernel's current source (its newest saved version) as a file in ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        path = self.call(f"pulling {ref}", self.api.kernels_pull, ref, str(dest), metadata=False, quiet=True)
        return Path(path)

    # ------------------------------------------------------------------ data sets

    def dataset_status(self, ref: str) -> str | None:
        """'ready', 'failed', ... or None when the data set does not exist (or is not visible)."""
        import requests

        def status():
            try:
                return self.api.dataset_status(ref)
            except requests.HTTPError as exc:
                if exc.response is not None and exc.response.status_code in (403, 404):
                    return None  # Kaggle hides another user's private data set behind a 403
                raise

        return self.call(f"status of data set {ref}", status)

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
