"""The GPU training benchmark: ``python -m ai2human.bench train|report``. Not shipped to Kaggle."""
