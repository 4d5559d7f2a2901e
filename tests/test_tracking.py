"""tracking: W&B online with a key, offline without one, keys from the environment or Kaggle secrets."""

from __future__ import annotations

import os
import sys
import types

import pytest

from ai2human.train import tracking


@pytest.fixture
def env(monkeypatch):
    """A private copy of the environment, so setup_tracking's writes do not leak into other tests."""
    fresh = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "KAGGLE_")) and k != "HF_TOKEN"}
    monkeypatch.setattr(os, "environ", fresh)
    return fresh


def fake_kaggle_secrets(monkeypatch, secrets: dict):
    module = types.ModuleType("kaggle_secrets")

    class UserSecretsClient:
        def get_secret(self, name):
            if name not in secrets:
                raise RuntimeError("secret not attached")  # what Kaggle's client does
            return secrets[name]

    module.UserSecretsClient = UserSecretsClient
    monkeypatch.setitem(sys.modules, "kaggle_secrets", module)


def test_none_turns_tracking_off(env, tmp_path):
    t = tracking.setup_tracking("none", "proj", tmp_path)
    assert (t.report_to, t.mode) == ("none", "off")
    assert "WANDB_MODE" not in env


def test_wandb_without_a_key_runs_offline_and_says_how_to_sync(env, tmp_path):
    t = tracking.setup_tracking("wandb", "proj", tmp_path)
    assert (t.report_to, t.mode) == (["wandb"], "offline")
    assert env["WANDB_MODE"] == "offline" and env["WANDB_PROJECT"] == "proj" and env["WANDB_DIR"] == str(tmp_path)
    assert f"wandb sync {tmp_path / 'wandb'}" in t.message


def test_wandb_with_a_key_in_the_environment_runs_online(env, tmp_path):
    env["WANDB_API_KEY"] = "k" * 40
    t = tracking.setup_tracking("wandb", "proj", tmp_path)
    assert t.mode == "online" and env["WANDB_MODE"] == "online"
    assert "k" * 40 not in t.message


def test_wandb_mode_offline_in_the_environment_wins(env, tmp_path):
    env.update(WANDB_API_KEY="k" * 40, WANDB_MODE="offline")
    assert tracking.setup_tracking("wandb", "proj", tmp_path).mode == "offline"


def test_key_from_kaggle_secrets_only_on_kaggle(env, monkeypatch, tmp_path):
    fake_kaggle_secrets(monkeypatch, {"WANDB_API_KEY": "s" * 40})
    assert tracking.get_secret("WANDB_API_KEY") == ""  # not on Kaggle: secrets are not asked
    env["KAGGLE_KERNEL_RUN_TYPE"] = "Interactive"
    assert tracking.get_secret("WANDB_API_KEY") == "s" * 40
    assert tracking.get_secret("HF_TOKEN") == ""  # not attached: no error
    t = tracking.setup_tracking("wandb", "proj", tmp_path)
    assert t.mode == "online" and env["WANDB_API_KEY"] == "s" * 40


def test_other_integrations_pass_through(env, tmp_path):
    assert tracking.setup_tracking("tensorboard", "proj", tmp_path).report_to == ["tensorboard"]
