"""What `mlops contracts check` and `mlops contracts show` do, as functions returning data.

The CLI prints; these only compute, so the flow, the tests and the CLI share them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from mlops_pipeline.contracts.partitions import PartitionReport, landing_dates, validate_partition
from mlops_pipeline.contracts.render import contract_markdown
from mlops_pipeline.contracts.spec import TABLES, load_contract
from mlops_pipeline.contracts.validate import ContractBreach
from mlops_pipeline.paths import Paths


@dataclass(frozen=True)
class CheckOutcome:
    """One partition's result: its report, or the breach that stopped it."""

    table: str
    date: str
    report: PartitionReport | None
    breach: ContractBreach | None

    @property
    def ok(self) -> bool:
        return self.breach is None


def check(
    home: str | os.PathLike[str] | None = None,
    tables: Sequence[str] | None = None,
    dates: Sequence[str] | None = None,
) -> list[CheckOutcome]:
    """Validate every landing partition of `tables` (all by default), or only `dates`.

    A breach in one partition does not hide the others: each gets an outcome, and the caller
    decides (the CLI exits non-zero if any outcome is not ok).
    """
    paths = Paths.at(home)
    outcomes = []
    for table in _tables(tables):
        for date in dates if dates is not None else landing_dates(paths, table):
            try:
                report = validate_partition(paths, table, date)
            except ContractBreach as breach:
                outcomes.append(CheckOutcome(table, date, None, breach))
            else:
                outcomes.append(CheckOutcome(table, report.date, report, None))
    return outcomes


def show(tables: Sequence[str] | None = None) -> dict[str, str]:
    """Each contract rendered as Markdown, by table."""
    return {table: contract_markdown(load_contract(table)) for table in _tables(tables)}


def _tables(tables: Sequence[str] | None) -> list[str]:
    chosen = list(TABLES if tables is None else tables)
    for table in chosen:
        load_contract(table)  # a clear error for an unknown table, before any work
    return chosen
