"""The benchmark's cases and the training settings each one runs with.

A case is ``REGIME-BATCHING[-bN]``: the regime says how long the examples are (``bench.data``),
the batching how micro-batches are made (``BATCHING``), ``-bN`` the micro-batch size, with the
gradient accumulation adjusted so an optimizer step keeps v5's 8 examples.
"""

from __future__ import annotations

from dataclasses import dataclass

from ai2human.bench import data as bench_data

# batching -> (packing, padding_free, train_sampling_strategy)
BATCHING = {
    "pad": (False, False, "random"),  # v5: random micro-batches padded to their longest example
    "padfree": (False, True, "random"),  # each micro-batch concatenated, no padding
    "packing": (True, False, "random"),  # examples packed into max_seq_length rows (fewer steps)
    "grouped": (False, False, "group_by_length"),  # length-grouped sampling: steps of similar lengths
    "rebalance": (False, False, "batch_rebalance"),  # each step's random examples regrouped by length (same steps)
}
EFFECTIVE_BATCH = 8  # v5: batch 2 x gradient accumulation 4


@dataclass(frozen=True)
class Case:
    name: str
    regime: str
    batching: str
    batch_size: int
    grad_accum: int

    @property
    def packing(self) -> bool:
        return BATCHING[self.batching][0]

    @property
    def padding_free(self) -> bool:
        return BATCHING[self.batching][1]

    @property
    def sampling(self) -> str:
        return BATCHING[self.batching][2]


def parse_case(name: str, batch_size: int = 2, grad_accum: int = 4) -> Case:
    """``full-pad``, ``real-packing``, ``real-rebalance-b4``, ... -> Case (``full`` alone = ``full-pad``).

    ``-bN`` sets the micro-batch size and divides the gradient accumulation so a step keeps
    ``batch_size x grad_accum`` examples (v5's 8).
    """
    parts = name.strip().split("-")
    if parts == ["full"]:
        parts = ["full", "pad"]
    size = None
    if len(parts) == 3 and parts[2].startswith("b") and parts[2][1:].isdigit():
        size = int(parts[2][1:])
        parts = parts[:2]
    if len(parts) != 2 or parts[0] not in bench_data.REGIMES or parts[1] not in BATCHING:
        raise ValueError(
            f"case {name!r}: expected REGIME-BATCHING[-bN] with REGIME in {', '.join(bench_data.REGIMES)} "
            f"and BATCHING in {', '.join(BATCHING)} (e.g. real-packing, real-rebalance-b4)"
        )
    effective = batch_size * grad_accum
    if size is not None:
        if size < 1 or effective % size:
            raise ValueError(f"case {name!r}: micro-batch {size} must divide the {effective} examples of a step")
        batch_size, grad_accum = size, effective // size
    return Case(name.strip(), parts[0], parts[1], batch_size, grad_accum)



def case_settings(base, case: Case, steps: int, run_dir):
    """The ``TrainSettings`` of one case: the params file's (``base``) with what the benchmark changes.

    What it changes, and why: a fixed number of steps (``full``) or one epoch (``real``/``epoch``),
    a log record every step (the loss per step), no evaluation or checkpoints (not training
    throughput), no tracking, a fresh run folder, and the case's batch and batching.
    """
    packing, padding_free, sampling = BATCHING[case.batching]
    return base.replace(
        run_dir=str(run_dir),
        per_device_train_batch_size=case.batch_size,
        gradient_accumulation_steps=case.grad_accum,
        num_train_epochs=1.0,
        max_steps=steps if case.regime == "full" else 0,
        logging_steps=1,
        eval_steps=0,
        save_steps=0,
        early_stopping_patience=0,
        packing=packing,
        padding_free=padding_free,
        train_sampling=sampling,
        report_to="none",
        resume="never",
        processes=1,
    )
