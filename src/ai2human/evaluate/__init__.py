"""Evaluation: batched generation and the metrics that judge the rewrites."""
