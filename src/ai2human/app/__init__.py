"""The Gradio rewrite page: ``python -m ai2human.app --run runs/<name>``."""
