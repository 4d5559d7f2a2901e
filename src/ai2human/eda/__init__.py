"""The EDA notebook's numbers (``analysis``) and the per-text style statistics it shares with the
evaluation (``style``)."""
