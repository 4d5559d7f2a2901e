"""Training pairs that teach a rewrite: AI-styled versions of the human texts (reverse pairs).

The dataset's two sides are often two texts on one topic, not a text and its rewrite. The pairs
stage (``notebooks/01b_pairs.ipynb``) has an instruct model restyle each human text of the
training split as an assistant would write it, keeps only restyled texts that pass the
evaluation's own checks (``filters``), and writes the pairs fine-tuning trains on (``store``).
"""
