"""Preference training after fine-tuning: sample rewrites, rank them with a reward, train DPO.

The prefer stage (``notebooks/02b_prefer.ipynb``) samples ``dpo_k`` rewrites per training input
from the SFT adapter (``sampling``), scores them with the reward-side checks (``reward``), keeps
best-vs-worst pairs per input (``pairs``) and trains a second adapter with TRL's DPO from the SFT
one (``dpo``); ``report`` draws what the notebook shows.
"""
