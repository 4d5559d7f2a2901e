"""Keep transformers' and the Hub's progress bars and info logging out of the reports.

An executed notebook is a report: "Loading weights 0/27", "Writing model shards" and download bars
land in its stderr boxes and say nothing a reader needs. Every model and tokenizer load and save
in the package runs inside ``quiet_loading()``; errors still show, and what was enabled before is
enabled again afterwards (the trainer's own progress is its business, not this module's).
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def quiet_loading():
    """Within the block: no transformers/Hub progress bars, transformers logs errors only."""
    import warnings

    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
    from transformers.utils import logging

    bars_on = logging.is_progress_bar_enabled()
    hub_bars_off = are_progress_bars_disabled()
    verbosity = logging.get_verbosity()
    logging.disable_progress_bar()  # the Hub's bars too
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars_on:
            with warnings.catch_warnings():  # the Hub warns when HF_HUB_DISABLE_PROGRESS_BARS forbids it
                warnings.simplefilter("ignore")
                logging.enable_progress_bar()
        if hub_bars_off:
            disable_progress_bars()
