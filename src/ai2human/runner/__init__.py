"""What drives runs: the command line, params files, executing notebooks, scanning for secrets, and
Kaggle (``runner.kaggle``). Never imported by the library, never shipped to a Kaggle kernel."""
