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
    (PEM, "private key"),
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
    (tmp_path / "run" / "weights.bin").write_bytes(b"\0\1\2" + HF.encode())  # binary: skipped
    wheel = tmp_path / "run" / "pkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/__init__.py", "")
        z.writestr("pkg/config.py", f"KEY = None\n{PEM}\n")
    findings = scan_paths([tmp_path / "run"])
    assert findings == [
        Finding(f"{wheel}!pkg/config.py", 2, "private key"),
        Finding(str(tmp_path / "run" / "sub" / "notes.md"), 3, "Hugging Face token"),
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
