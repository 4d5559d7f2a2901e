"""load_pairs: every bad input gives a DataError that says what to fix; every dropped row is counted."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ai2human.data.pairs import LoadReport, load_pairs, split_pairs, take
from ai2human.errors import DataError, UserError

REPO = Path(__file__).resolve().parents[1]


def pairs_frame(n: int = 12, human: str = "human", ai: str = "LLM") -> pd.DataFrame:
    return pd.DataFrame({human: [f"human text {i}" for i in range(n)], ai: [f"ai text {i}" for i in range(n)]})


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
def test_every_supported_format_loads_the_same_pairs(tmp_path, suffix):
    frame = pairs_frame()
    path = tmp_path / f"pairs{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        frame.to_json(path, orient="records")
    else:
        frame.to_parquet(path)
    pairs, report = load_pairs(path)
    assert list(pairs.columns) == ["human", "ai", "row"]
    assert pairs["human"].tolist() == frame["human"].tolist()
    assert pairs["ai"].tolist() == frame["LLM"].tolist()
    assert pairs["row"].tolist() == list(range(1, 13))
    assert report == LoadReport(str(path), 12, 0, 0, 12)


def test_other_column_names_are_read_into_human_and_ai(tmp_path):
    path = write_csv(tmp_path / "p.csv", pairs_frame(human="essay", ai="gpt4"))
    pairs, _ = load_pairs(path, human_column="essay", ai_column="gpt4")
    assert pairs.loc[0, "human"] == "human text 0" and pairs.loc[0, "ai"] == "ai text 0"


def test_missing_column_lists_the_columns_present(tmp_path):
    path = write_csv(tmp_path / "p.csv", pairs_frame(ai="gpt4"))
    with pytest.raises(DataError) as err:
        load_pairs(path)
    message = str(err.value)
    assert "'LLM'" in message and "columns present: human, gpt4" in message
    assert "ai_column" in message
    assert isinstance(err.value, UserError)  # the runner turns it into exit status 2


def test_empty_whitespace_and_missing_texts_are_dropped_and_counted(tmp_path):
    records = [{"human": f"h{i}", "LLM": f"a{i}"} for i in range(12)]
    records += [
        {"human": "", "LLM": "a"},  # empty
        {"human": "h", "LLM": "   \n\t"},  # whitespace only
        {"human": None, "LLM": "a"},  # missing (JSON null)
        {"LLM": "a"},  # key absent: NaN after parsing
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    pairs, report = load_pairs(path)
    assert report.rows_read == 16 and report.dropped_empty == 4 and report.rows_kept == 12
    assert pairs["row"].max() == 12  # the kept rows keep their row numbers in the file


def test_csv_empty_cells_are_dropped_but_the_text_NA_is_kept(tmp_path):
    frame = pairs_frame()
    frame.loc[3, "human"] = "NA"  # a text, not a missing value
    frame.loc[5, "LLM"] = ""
    pairs, report = load_pairs(write_csv(tmp_path / "p.csv", frame))
    assert report.dropped_empty == 1
    assert "NA" in pairs["human"].tolist()
    assert 6 not in pairs["row"].tolist()


def test_duplicate_pairs_are_counted_and_dropped_keeping_the_first(tmp_path):
    frame = pd.concat([pairs_frame(), pairs_frame().iloc[[0, 0, 4]]], ignore_index=True)
    frame.loc[len(frame)] = ["human text 1", "a different answer"]  # same human text: not a duplicate pair
    pairs, report = load_pairs(write_csv(tmp_path / "p.csv", frame))
    assert report.dropped_duplicates == 3 and report.rows_kept == 13
    assert pairs["row"].tolist()[:12] == list(range(1, 13))


def test_report_table_adds_up(tmp_path):
    frame = pd.concat([pairs_frame(), pairs_frame().iloc[[0]]], ignore_index=True)
    frame.loc[len(frame)] = ["", "x"]
    _, report = load_pairs(write_csv(tmp_path / "p.csv", frame))
    table = report.to_frame()["rows"]
    assert table.tolist() == [14, 1, 1, 12]
    assert report.to_dict()["rows_kept"] == 12


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_non_utf8_text_names_the_row(tmp_path, suffix):
    frame = pairs_frame()
    path = tmp_path / f"p{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    raw = path.read_bytes().replace(b"ai text 6", b"ai text \xe9 6")  # a Latin-1 e-acute
    path.write_bytes(raw)
    with pytest.raises(DataError, match=r"row 7, column 'LLM' is not valid UTF-8"):
        load_pairs(path)


def test_non_utf8_bytes_in_parquet_name_the_row(tmp_path):
    texts = [f"h{i}".encode() for i in range(12)]
    texts[9] = b"caf\xe9"
    table = pa.table({"human": pa.array(texts, pa.binary()), "LLM": [f"a{i}" for i in range(12)]})
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match=r"row 10, column 'human' is not valid UTF-8"):
        load_pairs(path)


def test_utf8_with_bom_and_accents_loads(tmp_path):
    frame = pairs_frame()
    frame.loc[0, "human"] = "café naïve – “quoted”"
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False).encode("utf-8"))
    pairs, _ = load_pairs(path)
    assert pairs.loc[0, "human"] == "café naïve – “quoted”"


def test_too_few_usable_rows_is_an_error_that_counts_what_was_dropped(tmp_path):
    frame = pd.concat([pairs_frame(8), pairs_frame(8).iloc[[0, 1]]], ignore_index=True)
    frame.loc[len(frame)] = ["", "x"]
    with pytest.raises(DataError, match=r"only 8 usable rows \(of 11 read; 1 empty, 2 duplicates\); at least 10"):
        load_pairs(write_csv(tmp_path / "p.csv", frame))
    pairs, _ = load_pairs(tmp_path / "p.csv", min_rows=8)
    assert len(pairs) == 8


def test_unknown_file_type_lists_the_supported_ones(tmp_path):
    path = tmp_path / "p.xlsx"
    path.write_text("whatever")
    with pytest.raises(DataError, match=r"unknown file type '\.xlsx'.*\.csv.*\.jsonl.*\.parquet"):
        load_pairs(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_pairs(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not a file"):
        load_pairs(tmp_path)


def test_unparsable_files_are_data_errors(tmp_path):
    bad_csv = tmp_path / "p.csv"
    bad_csv.write_text('human,LLM\n"never closed,x\n')
    with pytest.raises(DataError, match="cannot parse as CSV"):
        load_pairs(bad_csv)
    bad_json = tmp_path / "p.jsonl"
    bad_json.write_text('{"human": "a", "LLM": \n')
    with pytest.raises(DataError, match="cannot parse as JSONL"):
        load_pairs(bad_json)
    bad_parquet = tmp_path / "p.parquet"
    bad_parquet.write_text("not parquet")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        load_pairs(bad_parquet)


def test_comment_header_lines_are_skipped_but_hashes_in_texts_stay(tmp_path):
    frame = pairs_frame()
    frame.loc[0, "LLM"] = "# A heading\n\nBody"
    path = tmp_path / "p.csv"
    path.write_text("# synthetic\n# second comment\n" + frame.to_csv(index=False), encoding="utf-8")
    pairs, report = load_pairs(path)
    assert report.rows_read == 12
    assert pairs.loc[0, "ai"] == "# A heading\n\nBody"


def test_the_committed_sample_loads():
    path = REPO / "data" / "sample.csv"
    pairs, report = load_pairs(path)
    assert report.rows_kept == len(pairs) >= 100
    assert pairs["ai"].str.contains("\n\n").mean() > 0.9  # the LLM side's blank lines survived parsing


def test_split_is_reproducible_disjoint_and_complete():
    pairs = pairs_frame(50).rename(columns={"LLM": "ai"}).assign(row=range(1, 51))
    train, val = split_pairs(pairs, val_size=0.2, seed=42)
    again_train, again_val = split_pairs(pairs, val_size=0.2, seed=42)
    assert train.equals(again_train) and val.equals(again_val)
    assert len(val) == 10 and len(train) == 40
    assert set(train["row"]).isdisjoint(val["row"])
    assert set(train["row"]) | set(val["row"]) == set(range(1, 51))
    _, other_val = split_pairs(pairs, val_size=0.2, seed=7)
    assert set(other_val["row"]) != set(val["row"])


def test_split_edge_cases():
    pairs = pairs_frame(10).rename(columns={"LLM": "ai"}).assign(row=range(1, 11))
    train, val = split_pairs(pairs, val_size=0.0)
    assert len(train) == 10 and len(val) == 0
    _, val = split_pairs(pairs, val_size=0.01)
    assert len(val) == 1  # a non-zero val_size always holds out at least one row
    with pytest.raises(DataError, match=r"val_size must be in \[0, 1\)"):
        split_pairs(pairs, val_size=1.0)


def test_take_limits_rows_and_zero_means_all():
    pairs = pairs_frame(12)
    assert len(take(pairs, 5)) == 5
    assert len(take(pairs, 0)) == 12
    assert len(take(pairs, 100)) == 12


def test_header_only_csv_says_there_are_no_rows(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("human,LLM\n")
    with pytest.raises(DataError, match="has the columns but no rows"):
        load_pairs(path)


@pytest.mark.parametrize("column, dtype", [
    (pa.array(list(range(12)), pa.int64()), "int64"),
    (pa.array([True, False] * 6), "bool"),
    (pa.array([pd.Timestamp("2024-01-01")] * 12, pa.timestamp("ns")), "datetime64"),
    (pa.array([["a", "b"]] * 12, pa.list_(pa.string())), "ndarray"),
])
def test_parquet_columns_that_are_not_text_are_refused_naming_column_and_type(tmp_path, column, dtype):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"human": pa.array([f"human {i}" for i in range(12)]), "LLM": column}), path)
    with pytest.raises(DataError, match=rf"column 'LLM'.*{dtype}.*not text"):
        load_pairs(path)


@pytest.mark.parametrize("sep, name", [(";", "semicolon"), ("\t", "tab")])
def test_csv_with_another_delimiter_gets_a_hint(tmp_path, sep, name):
    path = tmp_path / "p.csv"
    pairs_frame().to_csv(path, index=False, sep=sep)
    with pytest.raises(DataError, match=rf"{name}-separated.*comma-separated"):
        load_pairs(path)
    frame = pairs_frame()
    frame.loc[3, "LLM"] = "one, two, three"  # commas inside a text: pandas fails to parse instead
    frame.to_csv(path, index=False, sep=sep)
    with pytest.raises(DataError, match=rf"{name}-separated"):
        load_pairs(path)


def test_broken_jsonl_line_is_named_by_its_line_number(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [json.dumps({"human": f"h {i}", "LLM": f"a {i}"}) for i in range(12)]
    lines[6] = lines[6][:-3]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 7 is not valid JSON"):
        load_pairs(path)


def test_relative_default_path_is_found_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # e.g. notebooks/, where a notebook opened locally starts
    pairs, report = load_pairs("data/sample.csv")
    assert report.path == str(REPO / "data" / "sample.csv") and len(pairs) >= 100
    with pytest.raises(DataError, match="does not exist"):
        load_pairs("data/no-such.csv")


def test_a_notebook_refuses_a_split_other_than_the_one_its_run_recorded(tmp_path):
    from ai2human.data.pairs import check_split

    path = write_csv(tmp_path / "p.csv", pairs_frame(n=20))
    train, val = split_pairs(load_pairs(path)[0], 0.2, 42)
    check_split(tmp_path, train, val)  # fine-tuning records it
    assert set(json.loads((tmp_path / "split.json").read_text())["rows"]["validation"]) == set(val["row"])
    check_split(tmp_path, train, val)  # evaluation finds the same split
    write_csv(path, pairs_frame(n=20).sample(frac=1, random_state=1))  # the file was shuffled in between
    train, val = split_pairs(load_pairs(path)[0], 0.2, 42)
    with pytest.raises(DataError, match="the dataset or its split changed"):
        check_split(tmp_path, train, val)
