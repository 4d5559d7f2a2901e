"""The human/AI pairs: loading and splitting them (``pairs``), the one Alpaca prompt (``prompts``),
and the synthetic sample (``sample``)."""
