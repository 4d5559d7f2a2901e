"""ai2human: fine-tune an LLM to rewrite AI-generated text so it reads as human-written.

The notebooks in ``notebooks/`` are thin reports; the work happens in these modules, one job each:

- ``data``        load, validate and split the human/AI pairs
- ``prompts``     the one Alpaca prompt used for training, evaluation and the chat app
- ``sample_data`` the deterministic synthetic sample set
- ``tiny_model``  the offline tiny Qwen2 model behind the reserved name ``local:tiny-qwen2``
- ``hardware``    what machine we are on and which backend/dtype it allows
- ``params``      read notebook ``parameters`` cells and validate params files
- ``runs``        execute notebooks with papermill into ``runs/<name>/`` with a manifest
- ``style``, ``eda``          style statistics and the EDA numbers
- ``training``, ``diagnostics``, ``tracking``  tokenise, train, read the loss curves, W&B
- ``generation``, ``metrics``  batched generation and the evaluation metrics
- ``kaggle``, ``kaggle_api``, ``kaggle_bundle``, ``credentials``  push runs to Kaggle, scan for secrets
- ``app``         the Gradio rewrite page; ``bench*`` the GPU training benchmark

Heavy libraries (torch, transformers, unsloth) are imported inside functions so that
``import ai2human`` and the runner's ``--help`` stay instant on any machine.
"""

__version__ = "0.1.0"
