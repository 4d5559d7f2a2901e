"""What machine we are on, and which backend and dtype it allows.

The rules (issue #4): Unsloth on an NVIDIA GPU with CUDA capability >= 7.0 when it imports;
otherwise transformers + PEFT (bitsandbytes 4-bit on CUDA); plain LoRA in fp32 on a CPU. A card
below 7.0 (the P100 the original work used) is refused: current Kaggle PyTorch and Unsloth dropped it.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from dataclasses import asdict, dataclass, field

from ai2human.errors import HardwareError

BACKENDS = ("auto", "unsloth", "hf")
MIN_CAPABILITY = (7, 0)


@dataclass
class Hardware:
    device: str  # "cuda" or "cpu"
    gpu_name: str = ""
    gpu_count: int = 0
    capability: tuple[int, int] | None = None
    gpu_memory_gib: float = 0.0
    bf16: bool = False
    cpu_count: int = 0
    ram_gib: float = 0.0
    platform: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line for a notebook's setup cell."""
        cpu = f"{self.cpu_count} CPU cores, {self.ram_gib:g} GiB RAM"
        if self.device != "cuda":
            return f"no CUDA GPU; {cpu}"
        cap = f"{self.capability[0]}.{self.capability[1]}" if self.capability else "?"
        count = f"{self.gpu_count} x " if self.gpu_count > 1 else ""
        return f"GPU: {count}{self.gpu_name}, CUDA capability {cap}, {self.gpu_memory_gib:g} GiB, bf16 {'yes' if self.bf16 else 'no'}; {cpu}"


def _ram_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 0.0


def detect_hardware() -> Hardware:
    """Describe this machine (imports torch)."""
    import torch

    hw = Hardware(device="cpu", cpu_count=os.cpu_count() or 0, ram_gib=round(_ram_gib(), 1), platform=platform.platform())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        hw.device = "cuda"
        hw.gpu_name = props.name
        hw.gpu_count = torch.cuda.device_count()
        hw.capability = (props.major, props.minor)
        hw.gpu_memory_gib = round(props.total_memory / 2**30, 1)
        hw.bf16 = bool(torch.cuda.is_bf16_supported())
    return hw


@dataclass
class BackendChoice:
    backend: str  # "unsloth" or "hf"
    dtype: str  # "bfloat16", "float16" or "float32"
    load_in_4bit: bool
    device: str
    notes: list[str] = field(default_factory=list)

    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def summary(self) -> str:
        why = "; ".join(self.notes)
        return f"backend={self.backend} dtype={self.dtype} 4-bit={self.load_in_4bit} device={self.device}" + (f" ({why})" if why else "")


def _unsloth_imports() -> tuple[bool, str]:
    if importlib.util.find_spec("unsloth") is None:
        return False, "unsloth is not installed (pip install '.[gpu]')"
    try:
        import unsloth  # noqa: F401  (must be imported before transformers to patch it)
    except Exception as exc:  # unsloth raises many kinds of errors on unsupported set-ups
        return False, f"unsloth failed to import: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return True, ""


# Stages that only generate and score (evaluation, pairs, score, app) take transformers + PEFT under
# ``auto``: its static-cache engine generated 1,646 tokens/s at the evaluation's batch on an H200 at 7B
# shape against 430 for Unsloth's fast inference (docs/benchmarks.md, generation benchmark). Training
# keeps Unsloth, which trains at twice the speed.
GENERATION_NOTE = "transformers + PEFT for generation: its static-cache engine measured ~3.8x Unsloth's decoding (docs/benchmarks.md)"


def choose_backend(requested: str, hw: Hardware, load_in_4bit: bool = True, purpose: str = "train") -> BackendChoice:
    """Pick backend, dtype and quantisation for ``hw``; every decision comes with a reason.

    ``purpose`` "generate" makes ``auto`` pick transformers + PEFT on a GPU without importing Unsloth
    (which would patch transformers' model classes); "train" (the default) prefers Unsloth.
    """
    if purpose not in ("train", "generate"):
        raise ValueError(f"purpose must be 'train' or 'generate', got {purpose!r}")
    if requested not in BACKENDS:
        raise HardwareError(f"backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    notes: list[str] = []
    if hw.device == "cuda" and hw.capability is not None and hw.capability < MIN_CAPABILITY:
        raise HardwareError(
            f"{hw.gpu_name} has CUDA capability {hw.capability[0]}.{hw.capability[1]}; current Kaggle PyTorch and "
            "Unsloth need >= 7.0. Choose the T4 accelerator (kaggle_accelerator: NvidiaTeslaT4)"
        )
    if hw.device != "cuda":
        if requested == "unsloth":
            raise HardwareError("backend 'unsloth' needs an NVIDIA GPU with CUDA capability >= 7.0; use backend: auto or hf on this machine")
        if load_in_4bit:
            notes.append("4-bit quantisation switched off: bitsandbytes 4-bit needs CUDA, so plain LoRA in fp32 on the CPU")
        else:
            notes.append("no CUDA GPU: plain LoRA in fp32 on the CPU")
        return BackendChoice("hf", "float32", False, "cpu", notes)

    dtype = "bfloat16" if hw.bf16 else "float16"
    notes.append(f"{'bf16 supported' if hw.bf16 else 'no bf16 on this GPU (e.g. T4): fp16'}")
    backend = requested
    if requested == "auto" and purpose == "generate":
        backend = "hf"
        notes.append(GENERATION_NOTE)
    elif requested in ("auto", "unsloth"):
        ok, why = _unsloth_imports()
        if ok:
            backend = "unsloth"
            notes.append(f"Unsloth on {hw.gpu_name} (capability {hw.capability[0]}.{hw.capability[1]})")
        elif requested == "unsloth":
            raise HardwareError(f"backend 'unsloth' requested but {why}; install it or use backend: hf")
        else:
            backend = "hf"
            notes.append(f"transformers + PEFT because {why}")
    else:
        notes.append("transformers + PEFT as requested")
    if backend == "hf" and load_in_4bit and importlib.util.find_spec("bitsandbytes") is None:
        notes.append("bitsandbytes not installed: loading in 16-bit instead of 4-bit")
        load_in_4bit = False
    return BackendChoice(backend, dtype, load_in_4bit, "cuda", notes)
