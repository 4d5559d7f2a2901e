"""The credential scanner: what it catches, where it says it is, and what it leaves alone."""

from __future__ import annotations

import base64
import json
import zipfile

import pytest

from ai2human.runner.credentials import Finding, credential_values, scan_paths, scan_text

# Assembled at run time so this file itself holds no credential-shaped string.
HF = "hf_" + "aB3dE5gH7jK9" * 3
KAGGLE_KEY = "0f1e2d3c" * 4
WANDB_KEY = "9a8b7c6d5e" * 4
PEM = "-----BEGIN " + "OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize("line, kind", [
    (f'{{"username": "ann", "key": "{KAGGLE_KEY}"}}', "Kaggle API key (kaggle.json)"),
    (f"export KAGGLE_KEY={KAGGLE_KEY}", "Kaggle API key"),
    ("token = 'KGAT_" + "4f" * 16 + "'", "Kaggle access token"),
    (f"login(token='{HF}')", "Hugging Face token"),
    (f'os.environ["WANDB_API_KEY"] = "{WANDB_KEY}"', "W&B API key"),
    (f"!wandb login --relogin {WANDB_KEY}", "W&B API key"),
    (f"machine api.wandb.ai login user password {WANDB_KEY}", "W&B API key (.netrc)"),
    (PEM, "Private Key"),
    ("aws_access_key_id = " + "AKIA" + "Z7X2Q4W6E8R0T2Y4", "AWS Access Key"),
    ("aws_secret_access_key = '" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "0123456789'", "AWS Access Key"),
    ("token: " + "ghp_" + "x9Y8w7V6u5T4s3R2q1P0o9N8m7L6k5J4i3H2", "GitHub Token"),
    ("GH=" + "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW", "GitHub token"),
    ("OPENAI=" + "sk-" + "proj-" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3", "OpenAI key"),
    ("slack = '" + "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx'", "Slack Token"),
    ("post to " + "https://hooks.slack.com/services/" + "T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx", "Slack Token"),
    ("post to " + "https://discord.com/api/webhooks/" + "123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz", "webhook URL"),
    ("db = " + "postgres://ann:" + "s3cretPassw0rd@db.example.com/x", "Basic Auth Credentials"),
    ("SERVICE_APIKEY = '" + "q8Zr2LmN4vX7tY1p" + "'", "Secret Keyword"),
    ("deploy_key: " + KAGGLE_KEY, "hex secret next to a key-like name"),
    ("client_secret = " + WANDB_KEY, "hex secret next to a key-like name"),
])
def test_each_kind_of_secret_is_found_and_named(line, kind):
    assert scan_text(f"first line\n{line}\nlast line", values={}) == [(2, kind)]


@pytest.mark.parametrize("line", [
    "git commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904",  # 40 hex without a W&B name
    f"md5 {KAGGLE_KEY}",  # 32 hex without a Kaggle name
    'os.environ["WANDB_MODE"] = "offline"',
    "secrets = UserSecretsClient(); os.environ['HF_TOKEN'] = secrets.get_secret('HF_TOKEN')",
    "hf_hub_download(repo_id='unsloth/Qwen2.5-7B', filename='config.json')",
    '"image/png": "' + base64.b64encode(bytes(range(256)) * 40).decode() + '"',
    f'{{"key": "{KAGGLE_KEY}"}}',  # a cache entry's md5, not kaggle.json (no username)
    f"cache_key = {KAGGLE_KEY}",
    '"split_sha256": "' + "ab" * 32 + '"',
    '{"output": "the APBlockchainize quarterly ritual"}',  # generated text in Artifactory's password shape
])
def test_ordinary_text_is_left_alone(line):
    assert scan_text(line, values={}) == []


def test_values_of_credential_variables_are_found_wherever_they_appear(tmp_path):
    env = {"HOME": str(tmp_path), "WANDB_API_KEY": "my-local-wandb-secret", "KAGGLE_USERNAME": "ann-the-kaggler",
           "MY_SERVICE_TOKEN": "tok-123456789012", "SHORT_TOKEN": "abc", "PATH": "/usr/bin:/bin/and-more"}
    values = credential_values(env)
    assert values == {"my-local-wandb-secret": "value of $WANDB_API_KEY", "tok-123456789012": "value of $MY_SERVICE_TOKEN"}
    text = "model_name: my-local-wandb-secret\nowner: ann-the-kaggler\nx = 'tok-123456789012'"
    assert scan_text(text, values) == [(1, "value of $WANDB_API_KEY"), (3, "value of $MY_SERVICE_TOKEN")]


def test_the_kaggle_key_and_token_files_are_secrets_too(tmp_path):
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle/kaggle.json").write_text(json.dumps({"username": "ann", "key": "abcdefabcdef-not-hex-key"}))
    (tmp_path / ".kaggle/access_token").write_text("KGAT_local_token_value\n")
    values = credential_values({"HOME": str(tmp_path)})
    assert values["abcdefabcdef-not-hex-key"] == "Kaggle key from kaggle.json"
    assert values["KGAT_local_token_value"] == "Kaggle access token from ~/.kaggle/access_token"


def test_scan_paths_names_file_and_line_walks_folders_and_looks_inside_wheels(tmp_path):
    (tmp_path / "run" / "sub").mkdir(parents=True)
    (tmp_path / "run" / "clean.txt").write_text("nothing here\n")
    (tmp_path / "run" / "sub" / "notes.md").write_text(f"a\nb\nuse {HF}\n")
    (tmp_path / "run" / "weights.bin").write_bytes(b"\0\1\2" + HF.lower().encode())  # binary: its strings
    wheel = tmp_path / "run" / "pkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/__init__.py", "")
        z.writestr("pkg/config.py", f"KEY = None\n{PEM}\n")
    findings = scan_paths([tmp_path / "run"])
    assert findings == [
        Finding(f"{wheel}!pkg/config.py", 2, "Private Key"),
        Finding(str(tmp_path / "run" / "sub" / "notes.md"), 3, "Hugging Face token"),
        Finding(str(tmp_path / "run" / "weights.bin"), 0, "Hugging Face token (in binary data)"),
    ]
    assert str(findings[1]) == f"{tmp_path / 'run' / 'sub' / 'notes.md'}:3: Hugging Face token"
    assert HF not in str(findings)  # a finding never repeats the secret


def test_an_executed_notebook_is_scanned_line_by_line(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "print(1)", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": f"logged in with {HF}\n"}]}]}
    path = tmp_path / "report.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    [finding] = scan_paths([path], values={})
    assert finding.kind == "Hugging Face token"
    assert HF in path.read_text().splitlines()[finding.line - 1]


@pytest.mark.parametrize("escape", ["\\n", "\\t", "\\r", '\\"'])
def test_a_token_right_after_a_json_escape_is_found(tmp_path, escape):
    path = tmp_path / "eval_outputs.jsonl"
    path.write_text(json.dumps({"output": "x"}) + "\n" + '{"output": "first line' + escape + HF + '"}\n')
    assert scan_paths([path], values={}) == [Finding(str(path), 2, "Hugging Face token")]


def test_the_kaggle_key_in_the_xdg_config_folder_is_known(tmp_path):
    (tmp_path / ".config/kaggle").mkdir(parents=True)
    (tmp_path / ".config/kaggle/kaggle.json").write_text(json.dumps({"username": "ann", "key": "abcdefabcdef-xdg-key"}))
    assert credential_values({"HOME": str(tmp_path)})["abcdefabcdef-xdg-key"] == "Kaggle key from kaggle.json"
    assert scan_text(json.dumps({"username": "ann", "key": KAGGLE_KEY}), values={}) == [(1, "Kaggle API key (kaggle.json)")]


def test_a_detector_pickle_is_scanned_through_its_vocabulary(tmp_path):
    joblib = pytest.importorskip("joblib")
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [f"a text about cats number {i}" for i in range(5)] + [f"my token is {HF} keep it safe"]
    path = tmp_path / "detector.joblib"
    joblib.dump(TfidfVectorizer().fit(texts), path)
    assert HF.lower() in TfidfVectorizer().fit(texts).vocabulary_  # stored lower-cased, verbatim
    assert scan_paths([path], values={}) == [Finding(str(path), 0, "Hugging Face token (in binary data)")]
    clean = tmp_path / "clean.joblib"
    joblib.dump(TfidfVectorizer().fit(texts[:5]), clean)
    assert scan_paths([clean], values={}) == []


def test_the_bundled_sample_and_the_demo_run_are_clean(demo_run):
    from pathlib import Path

    assert scan_paths([Path(__file__).resolve().parents[1] / "data", demo_run], values={}) == []
