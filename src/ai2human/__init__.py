"""ai2human: fine-tune an LLM to rewrite AI-generated text so it reads as human-written.

The notebooks in ``notebooks/`` are thin reports; the work happens in this package, in three parts:

- the library, which the notebooks, the chat app and Kaggle kernels import: ``rundir`` (the run
  folder's names and manifest), ``rules`` (every parameter's allowed values), ``data``, ``models``,
  ``eda``, ``train`` (one recipe: ``train.recipe.run_training``), ``evaluate`` (generation and the
  yardstick), ``score`` (``python -m ai2human.score``) and ``app`` (``python -m ai2human.app``);
- ``runner``: the command line, params files, executing runs, secrets and ``runner.kaggle``;
- ``bench``: the GPU training and generation benchmarks (``python -m ai2human.bench``).

The library never imports the runner or the benchmark, and only the library ships to Kaggle.
Heavy libraries (torch, transformers, unsloth) are imported inside functions so that
``import ai2human`` and the runner's ``--help`` stay instant on any machine.
"""

__version__ = "0.1.0"
