"""The pairs stage in a run (issue 18): skipped unless pairs_source asks for it, checked like every
parameter, and pushed to Kaggle as the second of four kernels with its output attached to the next."""

from __future__ import annotations

import json

import pytest

from ai2human.errors import ParamsError
from ai2human.runner.params import NOTEBOOKS, dependencies, resolve_run
from conftest import REPO, kaggle_dry_run


def test_the_stage_runs_between_eda_and_finetune_only_when_pairs_source_asks_for_it():
    assert list(NOTEBOOKS) == sorted(NOTEBOOKS, key=NOTEBOOKS.get), "file names sort in run order"
    assert resolve_run(REPO / "params/demo.yaml").notebooks == ["eda", "finetune", "evaluate"], "the demo is unchanged"
    for source in ("reverse", "both"):
        spec = resolve_run(REPO / "params/demo.yaml", [f"pairs_source={source}"])
        assert spec.notebooks == ["eda", "pairs", "finetune", "evaluate"]
        assert spec.notebook_params("finetune")["pairs_source"] == source
    assert resolve_run(REPO / "params/v5.yaml", only="pairs").notebooks == ["pairs"], "asked for by name, it runs"


def test_v5_reverse_is_v5_with_reverse_pairs():
    v5, reverse = resolve_run(REPO / "params/v5.yaml"), resolve_run(REPO / "params/v5-reverse.yaml")
    assert reverse.notebooks == ["eda", "pairs", "finetune", "evaluate"]
    assert {k: v for k, v in reverse.params.items() if v != v5.params.get(k)} == {"pairs_source": "reverse"}


def test_finetune_and_evaluate_wait_for_the_pairs_only_when_they_read_them():
    assert dependencies("finetune", {"pairs_source": "dataset"}) == []
    assert dependencies("finetune", {"pairs_source": "both"}) == ["pairs"]
    assert dependencies("evaluate", {"pairs_source": "reverse"}) == ["finetune", "pairs"]
    assert dependencies("eda", {"pairs_source": "reverse"}) == []


@pytest.mark.parametrize("settings, message", [
    (["pairs_source=revers"], "did you mean 'reverse'"),
    (["pairs_source=reverse", "styler_max_new_tokens=4096"], "leaves no room for the prompt"),
    (["styler_top_p=0"], "styler_top_p"),
    (["pairs_rows=-1"], "pairs_rows"),
    (["styling_instruction=' '"], "styling_instruction"),
    (["pairs_source=reverse", "val_size=0"], "calibrated on the validation split"),
])
def test_bad_pairs_settings_are_refused_before_anything_runs(settings, message):
    with pytest.raises(ParamsError, match=message):
        resolve_run(REPO / "params/demo.yaml", settings)


def test_the_styler_budget_is_not_checked_where_the_pairs_stage_does_not_run():
    """v5 with a short context (a quick check) must not fail on a stage it skips."""
    spec = resolve_run(REPO / "params/v5.yaml", ["max_seq_length=512", "max_new_tokens=16", "preview_max_new_tokens=8"])
    assert "pairs" not in spec.notebooks


def test_kaggle_dry_run_of_v5_reverse_renders_four_kernels_in_order(tmp_path):
    order, meta, kernels = kaggle_dry_run("params/v5-reverse.yaml", tmp_path)
    assert order == ["eda", "pairs", "finetune", "evaluate"]
    suffix = {short: [s.rsplit("-", 1)[1] for s in m["kernel_sources"]] for short, m in meta.items()}
    assert suffix == {"eda": [], "pairs": [], "finetune": ["pairs"], "evaluate": ["finetune", "pairs"]}
    rendered = json.loads((kernels / "01b_pairs" / "01b_pairs.ipynb").read_text())
    injected = "".join("".join(c["source"]) for c in rendered["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert "pairs_source = \"reverse\"" in injected and "run_dir = \"/kaggle/working\"" in injected
