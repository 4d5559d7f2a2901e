"""Pushing runs to Kaggle. ``workflow`` holds the flags and the dispatch; ``prepare``, ``pushing``,
``following``, ``fetching`` and ``pulling`` are the steps; ``wheel``, ``datasets``, ``kernels``
and ``setup_cell`` build what is uploaded (no network); ``api`` and ``auth`` talk to Kaggle."""
