"""The machine and the model: what hardware allows (``hardware``), loading a base model, LoRA and
adapters (``loading``), and the offline tiny model behind ``local:tiny-qwen2`` (``tiny``)."""
