"""Validate a batch of landing rows against its table's contract.

Three outcomes, never a fourth: a row is valid, or it is quarantined with the names of the
checks it broke and the contract version, or the whole batch is a `ContractBreach`. Nothing is
dropped silently (rows in = valid + quarantined). A breach is raised when:
- a table-level check fails (a contract column is missing, e.g. renamed, or its type cannot hold
  the contract's values), or a check cannot even be evaluated;
- one row check fails on more than the contract's `max_failure_share` (5%) of the batch's rows
  and on at least `min_failing_rows` (10) rows: that is a changed source, not bad rows, and
  quarantining would only starve training quietly;
- a batch (distribution) check fails, e.g. too many fractional dep_delay values (a unit change).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType

import pandas as pd
import pandera.pandas as pa

from mlops_pipeline.contracts import flights, planes, quarantine, weather
from mlops_pipeline.contracts.schema import BatchCheck, conform, key_schema, row_schema
from mlops_pipeline.contracts.spec import load_contract

RULES: dict[str, ModuleType] = {"flights": flights, "weather": weather, "planes": planes}
REASON_COLUMN = "_reason"
VERSION_COLUMN = "_contract_version"
DELETE_OP = "d"


class ContractBreach(Exception):
    """The batch as a whole breaks its contract: stop before anything trains on it."""

    def __init__(self, table: str, version: str, problems: list[str]):
        self.table = table
        self.version = version
        self.problems = list(problems)
        super().__init__(f"{table} contract v{version} breached: " + "; ".join(self.problems))


@dataclass(frozen=True)
class ValidationCounts:
    rows_in: int
    valid: int
    quarantined: int
    by_check: dict[str, int] = field(default_factory=dict)
    """Rows failing each check (a row failing two checks counts for both)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_in": self.rows_in,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "by_check": dict(self.by_check),
        }


@dataclass(frozen=True)
class ValidationResult:
    table: str
    contract_version: str
    valid: pd.DataFrame
    """The contract's columns, in canonical dtypes, with the input's index labels."""
    quarantined: pd.DataFrame
    """The same columns plus `_reason` (checks broken, ';'-joined) and `_contract_version`."""
    counts: ValidationCounts
    unexpected_columns: tuple[str, ...] = ()
    """Input columns the contract does not know (additive changes; not carried forward)."""


def schemas(table: str) -> tuple[pa.DataFrameSchema, pa.DataFrameSchema]:
    """The table's pandera schemas: for snapshot/insert/update rows, and for delete rows."""
    spec = load_contract(table)
    return row_schema(spec, RULES[table].row_checks()), key_schema(spec)


def batch_checks(table: str) -> list[BatchCheck]:
    return RULES[table].batch_checks()


def validate(table: str, frame: pd.DataFrame) -> ValidationResult:
    """Split `frame` (landing rows of `table`) into valid and quarantined rows, or raise.

    Raises `ContractBreach` (naming the table, the contract version and every problem) when
    the batch is broken as a whole; see the module docstring for the threshold.
    """
    spec = load_contract(table)
    conformed, problems = conform(frame.reset_index(drop=True), spec)
    if problems:
        raise ContractBreach(table, spec.version, problems)
    full, keys = schemas(table)
    deletes = (conformed["_op"] == DELETE_OP).fillna(False).to_numpy(dtype=bool)
    reasons = pd.Series("", index=conformed.index, dtype=object)
    for mask, schema in ((~deletes, full), (deletes, keys)):
        part = conformed[mask]
        reasons[mask] = _reasons(part, schema, problems).reindex(part.index).to_numpy()
    if problems:
        raise ContractBreach(table, spec.version, problems)

    by_check = _count(reasons)
    policy = spec.breach
    for name, failing in by_check.items():
        share = failing / len(conformed)
        if failing >= policy.min_failing_rows and share > policy.max_failure_share:
            problems.append(
                f"check {name} failed on {failing} of {len(conformed)} rows ({share:.1%} > "
                f"{policy.max_failure_share:.0%})"
            )
    for check in batch_checks(table):
        if (problem := check.check(conformed[~deletes])) is not None:
            problems.append(f"{check.name}: {problem}")
    if problems:
        raise ContractBreach(table, spec.version, problems)

    bad = (reasons != "").to_numpy()
    labels = frame.index
    valid = conformed[~bad].set_axis(labels[~bad])
    quarantined = conformed[bad].set_axis(labels[bad])
    quarantined[REASON_COLUMN] = reasons[bad].to_numpy()
    quarantined[VERSION_COLUMN] = spec.version
    counts = ValidationCounts(len(frame), len(valid), len(quarantined), by_check)
    extra = tuple(c for c in frame.columns if c not in spec.column_names)
    return ValidationResult(table, spec.version, valid, quarantined, counts, extra)


def _reasons(part: pd.DataFrame, schema: pa.DataFrameSchema, problems: list[str]) -> pd.Series:
    """Per-row reasons for `part`; table-level failures are appended to `problems`."""
    if part.empty:
        return pd.Series("", index=part.index, dtype=object)
    try:
        schema.validate(part, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        for _, case in cases[cases["index"].isna()].iterrows():
            where = f"column {case['column']}" if pd.notna(case["column"]) else "the table"
            problems.append(f"{case['check']} failed on {where}: {case['failure_case']}")
        return quarantine.failure_reasons(cases, part.index)
    return pd.Series("", index=part.index, dtype=object)


def _count(reasons: pd.Series) -> dict[str, int]:
    counter: Counter[str] = Counter()
    for reason in reasons[reasons != ""]:
        counter.update(reason.split(quarantine.REASON_SEPARATOR))
    return dict(sorted(counter.items()))
