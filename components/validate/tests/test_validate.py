from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlp_common.dataset import write_dataset
from mlp_common.files import read_json
from mlp_common.statistics import feature_statistics
from mlp_ingest.core import load_sklearn
from mlp_validate.cli import main
from mlp_validate.core import validate
from mlp_validate.schema import SchemaError, load_schema, parse_schema


@pytest.fixture
def wine() -> pd.DataFrame:
    return load_sklearn("wine")[0]


def run(tmp_path: Path, frame: pd.DataFrame, *extra: str) -> int:
    write_dataset(tmp_path / "ds", frame, name="wine", target="target", source="test")
    return main(["--dataset", str(tmp_path / "ds"), "--output", str(tmp_path / "out"), *extra])


def test_clean_data_passes_and_writes_statistics(tmp_path: Path, wine: pd.DataFrame) -> None:
    assert run(tmp_path, wine) == 0
    report = read_json(tmp_path / "out" / "report.json")
    assert report["ok"] and report["violations"] == [] and report["checks"] > 50
    stats = read_json(tmp_path / "out" / "statistics.json")
    assert stats["rows"] == 178
    assert stats["columns"]["alcohol"]["mean"] == pytest.approx(wine["alcohol"].mean())
    assert len(stats["columns"]["alcohol"]["quantiles"]) == 11


def test_corrupted_data_stops_with_a_readable_report(
    tmp_path: Path, wine: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = wine.copy()
    bad.loc[:36, "alcohol"] = None
    bad.loc[5, "proline"] = -3.0
    bad["hue"] = bad["hue"].astype(str)
    assert run(tmp_path, bad) == 1
    err = capsys.readouterr().err
    assert "validate: dataset wine@" in err
    assert "  - column 'alcohol': 37 nulls, rule allows 0\n" in err
    assert "  - column 'proline': 1 values below min 0 (smallest -3)" in err
    assert "  - column 'hue': type object, rule requires float" in err
    assert not (tmp_path / "out").exists()


def test_class_balance_unknown_classes_missing_and_extra_columns(wine: pd.DataFrame) -> None:
    schema = load_schema("embedded:wine")
    skewed = pd.concat([wine[wine["target"] != 2], wine[wine["target"] == 2].head(5)])
    skewed = skewed.assign(extra=1.0).drop(columns=["ash"])
    skewed.loc[skewed.index[0], "target"] = 7
    violations = validate(skewed, schema).violations
    assert "column 'ash': missing, rule requires it" in violations
    assert "target 'target': unknown classes ['7'], rule allows ['0', '1', '2']" in violations
    assert any(v.startswith("target 'target': class 2 is 3.") for v in violations)
    assert "columns ['extra']: not declared in the schema, rule allowExtraColumns is false" in (
        violations
    )


def test_train_serve_skew_against_reference_statistics(tmp_path: Path, wine: pd.DataFrame) -> None:
    reference = tmp_path / "reference.json"
    reference.write_text(pd.Series(feature_statistics(wine.drop(columns="target"))).to_json())
    assert run(tmp_path, wine, "--reference-stats", str(reference)) == 0
    shifted = wine.assign(alcohol=wine["alcohol"] + 2 * wine["alcohol"].std(ddof=0))
    assert run(tmp_path / "shifted", shifted, "--reference-stats", str(reference)) == 1
    report = validate(shifted, load_schema("embedded:wine"), read_json(reference))
    assert report.violations == [
        "column 'alcohol': mean 14.62 is 2.00 reference std from the training mean 13, "
        "rule allows 1 (train/serve skew)"
    ]


def test_schema_errors_list_every_problem_with_its_path(tmp_path: Path) -> None:
    document = {
        "target": {"name": "y", "colour": "red"},
        "columns": {"a": {"type": "decimal", "min": 3, "max": 1}, "b": {"maxNulls": -1}},
        "minRows": 0,
    }
    with pytest.raises(SchemaError) as error:
        parse_schema(document, "schema.yaml")
    message = str(error.value)
    for expected in (
        "schema.yaml: target.colour: unknown key",
        "schema.yaml: columns.a.type: must be one of float, int, bool, string",
        "schema.yaml: columns.a: min 3.0 is greater than max 1.0",
        "schema.yaml: columns.b.maxNulls: must be an integer >= 0",
        "schema.yaml: minRows: must be an integer >= 1",
    ):
        assert expected in message
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump({"target": {"name": "target"}, "columns": {"x": {"type": "int"}}})
    )
    assert load_schema(str(path)).columns[0].name == "x"


def test_the_default_digits_data_passes_its_embedded_schema_named_by_the_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digits = load_sklearn("digits")[0]
    write_dataset(tmp_path / "ds", digits, name="digits", target="target", source="test")
    assert main(["--dataset", str(tmp_path / "ds"), "--output", str(tmp_path / "out")]) == 0
    report = read_json(tmp_path / "out" / "report.json")
    assert report["schema"] == "embedded:digits" and report["ok"]
    assert read_json(tmp_path / "out" / "statistics.json")["rows"] == 1797
    bad = digits.copy()
    bad.loc[3, "pixel_4_4"] = 17.0
    write_dataset(tmp_path / "bad", bad, name="digits", target="target", source="test")
    assert main(["--dataset", str(tmp_path / "bad"), "--output", str(tmp_path / "o2")]) == 1
    assert "column 'pixel_4_4': 1 values above max 16" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_validation_in_batches_equals_the_whole_table(wine: pd.DataFrame) -> None:
    """One pass over batches finds the same violations, checks and statistics as the table."""
    from mlp_validate.core import validate_batches

    bad = wine.copy()
    bad.loc[:36, "alcohol"] = None
    bad.loc[5, "proline"], bad.loc[170, "proline"] = -3.0, -7.0
    bad.loc[120, "magnesium"] = 9999.0
    schema = load_schema("embedded:wine")
    whole = validate(bad, schema)
    batches = [bad.iloc[start : start + 16] for start in range(0, len(bad), 16)]
    streamed = validate_batches(dict(bad.dtypes), batches, schema)
    assert not whole.ok and streamed.violations == whole.violations
    assert (streamed.checks, streamed.statistics) == (whole.checks, whole.statistics)
    assert any("2 values below min" in v and "smallest -7" in v for v in whole.violations)
