"""The EDA notebook's numbers, tables and figures (``lengths``, ``structure``, ``vocabulary``,
``summary``, ``tables``, ``plots``, gathered for the notebook by ``analysis``) and the per-text
style statistics it shares with the evaluation (``style``)."""
