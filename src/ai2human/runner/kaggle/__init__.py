"""Pushing runs to Kaggle: the API client (``api``), what is uploaded (``bundle``) and the
push/follow/fetch workflow (``workflow``)."""
