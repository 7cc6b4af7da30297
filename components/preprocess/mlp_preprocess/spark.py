"""The split on Spark (``mlp-preprocess --engine spark``): the same rows in the same splits and the
same description as :mod:`mlp_preprocess.streaming`, computed by a PySpark job.

By default the job runs inside the step in ``local[*]`` mode (no cluster), on the Java the step
pins (:mod:`mlp_preprocess.java`); ``--spark-master`` points it elsewhere. Run by spark-submit
(the driver of a SparkApplication, :mod:`mlp_preprocess.spark_pod`), it keeps the master
spark-submit configured: the cluster's, whose executors it then gets.

The split of each row is computed by the very function the local path uses
(:func:`mlp_preprocess.core.splits_of`, through ``mapInPandas``), so a row lands in the same split
on Spark and locally by construction; the class counts, training means and variances are Spark
aggregations. Spark writes each split as a directory of part files; the step then copies them, batch
by batch, into the one ``<split>.parquet`` file training reads, computing the test split's content
hash on the way.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from mlp_common.content import ContentHasher
from mlp_common.dataset import data_files, iter_dataset
from mlp_common.step import DataError
from mlp_common.tables import iter_parquet

from mlp_preprocess.core import LABEL, SPLITS, check_sizes, describe_split, splits_of
from mlp_preprocess.java import use_pinned_java
from mlp_preprocess.streaming import SplitWriter, check_columns

SPLIT_COLUMN = "__mlp_split"
DEFAULT_MASTER = "local[*]"
SUBMITTED = "PYSPARK_GATEWAY_PORT"
"""Set when spark-submit runs this process (its JVM is already up, with its master)."""


def session(master: str | None) -> Any:
    """A SparkSession for one step: no UI, few shuffle partitions, Arrow for pandas, Python
    workers on this interpreter, the pinned Java. `master` None: spark-submit's master when it
    runs this process, else local[*]."""
    from pyspark.sql import SparkSession

    use_pinned_java(os.environ)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers import this step's code
    builder = SparkSession.builder
    if master is not None or SUBMITTED not in os.environ:
        builder = builder.master(master or DEFAULT_MASTER)
    return (
        builder.appName("mlp-preprocess")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def split_on_spark(
    directory: Path,
    output: Path,
    *,
    test_size: float,
    val_size: float,
    seed: int,
    id_column: str | None = None,
    master: str | None = None,
) -> dict[str, Any]:
    """Write ``train/val/test.parquet`` of the dataset ``directory`` into ``output`` with Spark
    and return the feature description (the same as :func:`streaming.split_dataset`'s)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812 (Spark's convention)
    from pyspark.sql.types import StringType, StructField, StructType

    check_sizes(test_size, val_size)
    info, _ = iter_dataset(directory)
    target = info.target
    features = check_columns(info.columns, target, id_column)
    spark = session(master)
    try:
        rows = spark.read.parquet(*(str(p) for p in data_files(directory, info)))
        schema = StructType([*rows.schema.fields, StructField(SPLIT_COLUMN, StringType(), False)])

        def assign(batches: Any) -> Any:
            for batch in batches:
                split = splits_of(batch, target, id_column, test_size, val_size)
                yield batch.assign(**{SPLIT_COLUMN: split})

        for column, what in ((id_column, "id column"), (target, "target column")):
            if column is not None and (nulls := rows.filter(F.col(column).isNull()).count()):
                raise DataError(f"{what} {column!r}: {nulls} nulls")
        assigned = rows.mapInPandas(assign, schema).persist(StorageLevel.DISK_ONLY)
        counts = {r[target]: r["count"] for r in assigned.groupBy(target).count().collect()}
        classes = sorted(counts)
        rare = sorted(str(c) for c, n in counts.items() if n < 3)
        if rare:
            raise DataError(f"target column {target!r}: classes {rare} have fewer than 3 rows")
        train = assigned.filter(F.col(SPLIT_COLUMN) == "train")
        trained = {r[target] for r in train.select(target).distinct().collect()}
        missing = [str(c) for c in classes if c not in trained]
        if missing:
            raise DataError(f"target column {target!r}: classes {missing} have no training rows")
        means = train.agg(*(F.avg(F.col(c).cast("double")).alias(c) for c in features)).first()
        index = F.create_map(*(F.lit(v) for c, i in zip(classes, range(len(classes)), strict=True)
                               for v in (c, i)))  # fmt: skip
        filled = assigned.select(
            *(F.coalesce(F.col(c).cast("double"), F.lit(means[c])).alias(c) for c in features),
            F.element_at(index, F.col(target)).cast("long").alias(LABEL),
            F.col(SPLIT_COLUMN),
        )
        variances = (
            filled.filter(F.col(SPLIT_COLUMN) == "train")
            .agg(*(F.var_pop(c).alias(c) for c in features))
            .first()
        )
        staging = output / ".spark"
        filled.write.partitionBy(SPLIT_COLUMN).parquet(str(staging))
        assigned.unpersist()
    finally:
        spark.stop()
    sizes, test_hash = _collect(staging, output, features)
    shutil.rmtree(staging)
    return describe_split(
        features=features,
        dtypes={name: info.columns[name] for name in features},
        target=target,
        classes=classes,
        mean=[float(means[c]) for c in features],
        variance=[float(variances[c]) for c in features],
        splits=sizes,
        seed=seed,
        id_column=id_column,
        test_size=test_size,
        val_size=val_size,
        test_hash=test_hash,
    )


def _collect(staging: Path, output: Path, features: list[str]) -> tuple[dict[str, int], str]:
    """Spark's part files of each split -> ``<split>.parquet``; the sizes and the test hash."""
    empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in features}).assign(
        **{LABEL: pd.Series(dtype="int64")}
    )
    hasher = ContentHasher([*((c, "float64") for c in features), (LABEL, "int64")])
    sizes = {}
    for name in SPLITS:
        parts = sorted((staging / f"{SPLIT_COLUMN}={name}").glob("part-*.parquet"))
        writer = SplitWriter(output / f"{name}.parquet")
        for batch in iter_parquet(parts, [*features, LABEL]):
            writer.write(batch)
            if name == "test":
                hasher.update(batch)
        writer.close(empty)
        sizes[name] = writer.rows
    return sizes, f"sha256:{hasher.hexdigest()}"
