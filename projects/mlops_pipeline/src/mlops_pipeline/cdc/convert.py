"""PostgreSQL text values -> typed Arrow columns of a table's landing schema, a column at a time.

Both halves of CDC produce text: the initial snapshot reads the tables with COPY TO STDOUT and
the change stream carries pgoutput's text tuples. Both are the type's output function, so one
converter types them and the snapshot and the stream can never disagree on a value. Converting
whole columns (Arrow casts, pandas' ISO 8601 parser) is ~50x faster than value by value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_pipeline.source import schema


class ConversionError(ValueError):
    """A value that does not fit its column's type (the message names table and column)."""


def text_column(values: Sequence[str | None], column: schema.Column, table: str) -> pa.Array:
    """One column of text values (None = NULL) as an Arrow array of the column's landing type."""
    try:
        if column.kind == "text":
            return pa.array(values, pa.string())
        if column.kind in ("int", "float"):
            return pc.cast(pa.array(values, pa.string()), column.arrow)
        if column.kind == "bool":
            mapped = [None if v is None else _bool(v) for v in values]
            return pa.array(mapped, pa.bool_())
        if column.kind == "timestamptz":
            parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
            return pa.array(parsed, column.arrow)
    except (pa.ArrowInvalid, ValueError, TypeError) as exc:
        raise ConversionError(
            f"{table}.{column.name}: cannot read values as {column.kind}: {exc}"
        ) from exc
    raise ConversionError(f"{table}.{column.name}: unsupported column kind {column.kind!r}")


def _bool(text: str) -> bool:
    if text == "t":
        return True
    if text == "f":
        return False
    raise ValueError(f"boolean text {text!r} is neither 't' nor 'f'")


def landing_table(
    table: str,
    rows: Sequence[Sequence[str | None]],
    column_names: Sequence[str],
    ops: Sequence[str],
    lsns: Sequence[int],
    seqs: Sequence[int],
    commit_times_us: Sequence[int],
) -> pa.Table:
    """Text rows (in `column_names` order) plus CDC metadata as a table of the landing schema.

    `column_names` is the order the source sent (a Relation message or a COPY column list); it
    must hold exactly the table's columns, so schema drift fails loudly here, not downstream.
    """
    spec = schema.table(table)
    expected, got = set(spec.column_names), set(column_names)
    if expected != got:
        raise ConversionError(
            f"source table {table!r} columns differ from the landing schema: "
            f"missing {sorted(expected - got)}, unexpected {sorted(got - expected)}"
        )
    position = {name: i for i, name in enumerate(column_names)}
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in column_names]
    arrays = [text_column(by_column[position[c.name]], c, table) for c in spec.columns]
    arrays += [
        pa.array(ops, pa.string()),
        pa.array(np.asarray(lsns, dtype=np.int64)),
        pa.array(np.asarray(seqs, dtype=np.int64)),
        pa.array(np.asarray(commit_times_us, dtype=np.int64)).cast(pa.timestamp("us", tz="UTC")),
    ]
    return pa.Table.from_arrays(arrays, schema=schema.landing_schema(table))
