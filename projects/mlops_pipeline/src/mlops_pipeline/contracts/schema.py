"""From a contract spec to executable checks: table-level conformance and pandera schemas.

Table-level problems (a column missing, a type that cannot hold the contract's values) are
found here, before any row is looked at, because they break every row at once: they are a
`ContractBreach`, never a quarantine. Columns that pass are cast to one canonical pandas dtype
per contract type, so the landing writer may use int32 or int64, object or string columns, and
micro- or nanosecond timestamps without the row checks caring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from mlops_pipeline.contracts.spec import ColumnSpec, ContractSpec

PANDAS_DTYPES = {
    "integer": "Int64",
    "float": "float64",
    "string": "string",
    "boolean": "boolean",
    "timestamp": "datetime64[ns, UTC]",
}


@dataclass(frozen=True)
class BatchCheck:
    """A check on a whole batch's distribution: returns a problem in words, or None if fine."""

    name: str
    check: Callable[[pd.DataFrame], str | None]


def conform(frame: pd.DataFrame, spec: ContractSpec) -> tuple[pd.DataFrame, list[str]]:
    """The contract's columns cast to their canonical dtypes, and the table-level problems.

    A problem is a missing column or a column whose values the contract type cannot hold
    losslessly (floats with fractions in an integer column, naive timestamps, mixed objects).
    """
    problems: list[str] = []
    if missing := [name for name in spec.column_names if name not in frame.columns]:
        problems.append(f"missing columns: {', '.join(missing)}")
    cast: dict[str, pd.Series] = {}
    for column in spec.columns:
        if column.name not in frame.columns:
            continue
        try:
            cast[column.name] = _cast(frame[column.name], column)
        except (TypeError, ValueError) as exc:
            problems.append(f"column {column.name}: {exc}")
    return pd.DataFrame(cast, index=frame.index), problems


def _cast(values: pd.Series, column: ColumnSpec) -> pd.Series:
    want = column.dtype
    got = values.dtype
    if values.isna().all():  # no value contradicts the contract (an all-null column has no type)
        return pd.Series(None, index=values.index, dtype=PANDAS_DTYPES[want])
    bad = TypeError(f"expected {want}, got dtype {got}")
    if want == "timestamp":
        if not isinstance(got, pd.DatetimeTZDtype):
            if pd.api.types.is_datetime64_dtype(got):
                raise TypeError("timestamps without a time zone (the contract's clock is UTC)")
            raise bad
        return values.dt.tz_convert("UTC").astype(PANDAS_DTYPES[want])
    if pd.api.types.is_bool_dtype(got) and want != "boolean":
        raise bad
    if want == "integer":
        if pd.api.types.is_integer_dtype(got):
            return values.astype("Int64")
        if pd.api.types.is_float_dtype(got):  # a nullable integer column read back as float
            present = values.dropna().to_numpy(dtype="float64")
            if not np.all(np.mod(present, 1) == 0):
                raise TypeError(f"expected integer, got fractional {got} values")
            return values.astype("Int64")
        raise bad
    if want == "float":
        if pd.api.types.is_numeric_dtype(got):
            return pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index)
        raise bad
    if want == "string":
        if pd.api.types.is_string_dtype(got) and pd.api.types.infer_dtype(values) in (
            "string",
            "empty",
        ):
            return values.astype("string")
        raise bad
    if want == "boolean":
        if pd.api.types.is_bool_dtype(got) or pd.api.types.infer_dtype(values) in (
            "boolean",
            "empty",
        ):
            return values.astype("boolean")
        raise bad
    raise bad


def column_checks(column: ColumnSpec) -> list[pa.Check]:
    """The column's value checks, named `range`, `allowed` and `pattern` (nulls are skipped)."""
    checks = []
    if column.min is not None or column.max is not None:
        low = -np.inf if column.min is None else column.min
        high = np.inf if column.max is None else column.max
        checks.append(pa.Check(lambda s, lo=low, hi=high: s.between(lo, hi), name="range"))
    if column.allowed is not None:
        allowed = list(column.allowed)
        checks.append(pa.Check(lambda s, a=allowed: s.isin(a), name="allowed"))
    if column.pattern is not None:
        pattern = column.pattern
        checks.append(
            pa.Check(
                lambda s, p=pattern: s.str.fullmatch(p).fillna(False).astype(bool), name="pattern"
            )
        )
    return checks


def row_schema(spec: ContractSpec, frame_checks: list[pa.Check]) -> pa.DataFrameSchema:
    """The schema of snapshot, insert and update rows: every column and every row rule."""
    columns = {
        c.name: pa.Column(PANDAS_DTYPES[c.dtype], column_checks(c), nullable=c.nullable)
        for c in spec.columns
    }
    return pa.DataFrameSchema(columns, checks=frame_checks, name=f"{spec.table} v{spec.version}")


def key_schema(spec: ContractSpec) -> pa.DataFrameSchema:
    """The schema of delete rows: a delete needs only its key (and the CDC columns) to apply."""
    needed = [c for c in spec.columns if c.name in spec.key or c.landing]
    columns = {
        c.name: pa.Column(PANDAS_DTYPES[c.dtype], column_checks(c), nullable=False) for c in needed
    }
    return pa.DataFrameSchema(columns, name=f"{spec.table} v{spec.version} (deletes)")
