"""Everything ``01_eda`` calls, under one name: ``from ai2human.eda import analysis as eda``.

The work lives in one module per job; this module only gathers their public names so the notebook
reads ``eda.token_stats(...)``, ``eda.plot_tokens(...)``:

- ``lengths``     characters, words and tokens per text and per training example, percentiles,
                  the recommended ``max_seq_length`` and the share of examples longer than it
- ``structure``   paragraph structure and the per-column mean/std of the style statistics
- ``vocabulary``  word counts, top words, weighted log-odds (the words that tell the styles apart)
- ``summary``     ``eda_summary.json``: build, write, read
- ``tables``      the tables as shown: one statistic per row, captions, per-row number formats
- ``plots``       the figures
- ``style``       the per-text style statistics (shared with the evaluation)
"""

from __future__ import annotations

from ai2human.eda.lengths import (
    OVERLONG_WARNING_SHARE,
    PERCENTILES,
    example_texts,
    length_stats,
    length_table,
    overlong_warning,
    percentiles,
    power_of_two_at_least,
    recommend_max_seq_length,
    share_over,
    token_lengths,
    token_stats,
)
from ai2human.eda.plots import (
    plot_distinguishing,
    plot_lengths,
    plot_paragraphs,
    plot_style,
    plot_tokens,
    plot_top_words,
    plot_wordclouds,
)
from ai2human.eda.structure import paragraph_stats, style_stats
from ai2human.eda.summary import SUMMARY_FILE, build_summary, read_summary, write_summary
from ai2human.eda.tables import (
    SIDES,
    format_value,
    lengths_frame,
    sample_pairs_html,
    stats_frame,
    style_frame,
    style_stats_table,
    table,
)
from ai2human.eda.vocabulary import distinguishing_words, log_odds_dirichlet, stopwords, top_words, word_counts
