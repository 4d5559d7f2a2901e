"""Kaggle credentials, found the way the official client finds them, without any network call.

A missing credential is reported before any work is done (exit 2, naming the three ways).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ai2human.errors import UserError

CREDENTIALS_HELP = """no Kaggle credentials found. Give them in one of three ways:
  1. environment variables KAGGLE_USERNAME and KAGGLE_KEY (kaggle.com > Settings > API > Create Legacy API Key)
  2. the file ~/.kaggle/kaggle.json that button downloads: {"username": "...", "key": "..."} (chmod 600 it)
  3. an access token (Settings > API > Generate New Token) in KAGGLE_API_TOKEN or the file ~/.kaggle/access_token
Never put them in a params file or a notebook."""


@dataclass
class Credentials:
    method: str  # "environment", "kaggle.json", "access token" or "oauth"
    source: str  # where they were found, for messages
    username: str | None  # None for an access token until the server says whose it is


def config_dir(environ) -> Path:
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
    config = config_dir(environ)
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
