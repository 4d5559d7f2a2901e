"""hardware.choose_backend: the backend rules on fake machines (no GPU needed)."""

from __future__ import annotations

import importlib.util

import pytest

from ai2human.models import hardware
from ai2human.errors import HardwareError
from ai2human.models.hardware import Hardware, choose_backend


def gpu(name="Tesla T4", capability=(7, 5), bf16=False, memory=14.7) -> Hardware:
    return Hardware(device="cuda", gpu_name=name, gpu_count=1, capability=capability, gpu_memory_gib=memory, bf16=bf16, cpu_count=4)


CPU = Hardware(device="cpu", cpu_count=2, ram_gib=16.0)


@pytest.fixture
def unsloth_imports(monkeypatch):
    """Make Unsloth import (True) or fail (False) without touching the real package."""

    def set_(ok: bool):
        monkeypatch.setattr(hardware, "_unsloth_imports", lambda: (ok, "" if ok else "unsloth is not installed"))

    return set_


@pytest.fixture
def bitsandbytes_present(monkeypatch):
    real = importlib.util.find_spec

    def set_(present: bool):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (object() if present else None) if name == "bitsandbytes" else real(name, *a))

    return set_


def test_t4_auto_picks_unsloth_fp16_4bit(unsloth_imports):
    unsloth_imports(True)
    choice = choose_backend("auto", gpu(), load_in_4bit=True)
    assert (choice.backend, choice.dtype, choice.load_in_4bit, choice.device) == ("unsloth", "float16", True, "cuda")
    assert any("fp16" in n for n in choice.notes) and any("Unsloth" in n for n in choice.notes)


def test_ampere_gets_bf16(unsloth_imports):
    unsloth_imports(True)
    assert choose_backend("auto", gpu("NVIDIA H100", (9, 0), bf16=True)).dtype == "bfloat16"


def test_auto_falls_back_to_hf_with_the_reason(unsloth_imports, bitsandbytes_present):
    unsloth_imports(False)
    bitsandbytes_present(True)
    choice = choose_backend("auto", gpu(), load_in_4bit=True)
    assert (choice.backend, choice.load_in_4bit) == ("hf", True)
    assert any("unsloth is not installed" in n for n in choice.notes)


def test_unsloth_requested_but_missing_is_an_error(unsloth_imports):
    unsloth_imports(False)
    with pytest.raises(HardwareError, match="backend: hf"):
        choose_backend("unsloth", gpu())


def test_hf_without_bitsandbytes_loads_16_bit(bitsandbytes_present):
    bitsandbytes_present(False)
    choice = choose_backend("hf", gpu(), load_in_4bit=True)
    assert choice.backend == "hf" and not choice.load_in_4bit
    assert any("bitsandbytes" in n for n in choice.notes)


def test_p100_is_refused_whatever_the_backend():
    for backend in ("auto", "unsloth", "hf"):
        with pytest.raises(HardwareError, match="T4"):
            choose_backend(backend, gpu("Tesla P100-PCIE-16GB", (6, 0)))


def test_cpu_turns_4bit_off_with_a_note():
    choice = choose_backend("auto", CPU, load_in_4bit=True)
    assert (choice.backend, choice.dtype, choice.load_in_4bit, choice.device) == ("hf", "float32", False, "cpu")
    assert any("4-bit" in n for n in choice.notes)
    assert "4-bit" in choice.summary()
    assert choose_backend("hf", CPU, load_in_4bit=False).notes  # still says why fp32 on CPU


def test_cpu_refuses_unsloth():
    with pytest.raises(HardwareError, match="NVIDIA GPU"):
        choose_backend("unsloth", CPU)


def test_unknown_backend_is_an_error():
    with pytest.raises(HardwareError, match="auto, unsloth, hf"):
        choose_backend("vllm", CPU)


def test_describe_names_the_gpu_and_its_capability():
    line = gpu().describe()
    assert "Tesla T4" in line and "capability 7.5" in line and "14.7 GiB" in line
    assert CPU.describe().startswith("no CUDA GPU")


def test_detect_hardware_on_this_machine():
    hw = hardware.detect_hardware()
    assert hw.device in ("cpu", "cuda") and hw.cpu_count >= 1
    assert isinstance(hw.to_dict(), dict)


def test_generation_stages_take_transformers_under_auto_without_importing_unsloth(monkeypatch):
    """Evaluation, pairs, score and app generate: auto gives them the faster static-cache engine."""
    monkeypatch.setattr(hardware, "_unsloth_imports", lambda: pytest.fail("Unsloth must not be imported for generation"))
    choice = choose_backend("auto", gpu(), load_in_4bit=True, purpose="generate")
    assert choice.backend == "hf" and "generation" in choice.summary()
    monkeypatch.setattr(hardware, "_unsloth_imports", lambda: (True, ""))
    assert choose_backend("unsloth", gpu(), purpose="generate").backend == "unsloth"  # asked for by name: kept
    assert choose_backend("auto", gpu()).backend == "unsloth"  # training still prefers Unsloth
