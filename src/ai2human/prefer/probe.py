"""The reward of fresh samples on held-out inputs, measured while DPO trains.

The pairs' rewards say what the SFT policy produced; whether DPO helps shows only in what the
policy produces *next*, on inputs it never trained on. Every ``every`` steps the probe samples
``k`` rewrites of each held-out input (validation AI texts: never trained on by SFT or DPO) with the
same seed each time, so two probes differ by the policy and not by the dice, and scores them with
the reward. Step 0 is the SFT adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ai2human.prefer.sampling import sample_rewrites, score_samples


LOG_FLOOR = 1e-12  # an empty rewrite's reward (0) counts as this in the log mean


@dataclass
class RewardProbe:
    sources: list[str]
    reward: object  # prefer.reward.Reward
    embedder: object
    tokenizer: object
    k: int
    max_seq_length: int
    max_new_tokens: int
    temperature: float
    top_p: float
    batch_size: int = 0
    seed: int = 0
    backend: str = "hf"
    records: list[dict] = field(default_factory=list)  # one per probe: step, reward_mean, score_mean...
    scored: dict = field(default_factory=dict)  # step -> the scored samples (first and last kept)

    def measure(self, model, step: int) -> dict:
        """Sample, score and record the policy's mean reward on the held-out inputs at ``step``."""
        import time

        began = time.perf_counter()
        samples = sample_rewrites(model, self.tokenizer, self.sources, self.k, self.max_seq_length, self.max_new_tokens,
                                  self.temperature, self.top_p, self.batch_size, self.seed, self.backend)
        scored = score_samples(self.reward, self.embedder, samples)
        record = {"step": int(step), "reward_mean": float(scored["reward"].mean()),
                  # the geometric view: a weak model's rewards span decades, and their mean follows the few largest
                  "log10_reward_mean": float(np.log10(np.maximum(scored["reward"].to_numpy(float), LOG_FLOOR)).mean()),
                  "score_mean": float(scored["score"].mean()), "success_rate": float(scored["success"].mean()),
                  "truncated_share": float(scored["hit_limit"].mean()), "samples": len(scored),
                  "seconds": round(time.perf_counter() - began, 3)}
        self.records.append(record)
        self.scored = {s: f for s, f in self.scored.items() if s == min(self.scored)} | {int(step): scored}
        return record

    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def callback(self, every: int):
        """A ``TrainerCallback`` probing every ``every`` optimizer steps and after the last one."""
        from transformers import TrainerCallback

        probe = self

        class ProbeCallback(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                step = state.global_step
                if step % max(every, 1) == 0 or step >= state.max_steps:
                    probe.measure(model, step)

        return ProbeCallback()
