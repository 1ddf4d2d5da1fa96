"""From pandera's failure report to one quarantine reason per row.

pandera (`validate(..., lazy=True)`) reports every failure as a row of `failure_cases`: the
schema context, the column (None for a frame-wide check), the check's name, the failing value
and the row's index label (None when the failure is not about one row: a missing column, a
check that raised). A quarantined row must say which checks it broke, so an owner can fix the
producer; this module folds that report into one string per row.
"""

from __future__ import annotations

import pandas as pd

REASON_SEPARATOR = ";"


def failure_reasons(failure_cases: pd.DataFrame, index: pd.Index) -> pd.Series:
    """For each label of `index`, the names of the checks its row broke ('' for none).

    A column check is named `<column>.<check>` (`dep_delay.range`, `tailnum.not_nullable`), a
    frame-wide check by its own name (`departure_consistent`). Names are unique per row, sorted
    and joined with ';'. Failures without a row index (table-level) are not any row's reason.
    """
    # BEGIN SOLUTION 2.2: fold pandera's failure cases into one sorted, ';'-joined reason per row
    rows = failure_cases[failure_cases["index"].notna()]
    check = rows["check"].astype(str)
    column = rows["column"]
    is_column = (rows["schema_context"] == "Column") & column.notna()
    names = check.where(~is_column, column.astype(str) + "." + check)
    per_row = pd.Series(names.to_numpy(), index=pd.Index(rows["index"].to_numpy()))
    joined = per_row.groupby(level=0).agg(lambda s: REASON_SEPARATOR.join(sorted(set(s))))
    return joined.reindex(index, fill_value="").astype(str)
    # END SOLUTION
