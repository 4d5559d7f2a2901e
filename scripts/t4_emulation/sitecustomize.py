"""T4 emulation for every Python process of a GPU script (scripts/gpu_v5_run.sh with T4=1).

A T4 has 15 GiB and no bf16. With AI2HUMAN_T4_EMULATION=<GiB> set and this folder first on
PYTHONPATH, each process - the runner, papermill, every notebook kernel, accelerate workers - sees
no bf16 support (so the notebooks pick fp16, as on a T4) and is capped at that much GPU memory from
its first CUDA call (torch's lazy-init queue), without changing a line of the package.
"""

import os

_cap = os.environ.get("AI2HUMAN_T4_EMULATION")
if _cap:
    import torch

    torch.cuda.is_bf16_supported = lambda *args, **kwargs: False

    def _cap_memory(gib=float(_cap)):
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, gib * 2**30 / total))

    torch.cuda._lazy_call(_cap_memory)
