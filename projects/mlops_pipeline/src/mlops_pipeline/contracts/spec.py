"""Data contracts as data: one YAML file per landing table, loaded into typed objects.

The YAML is the published, reviewable side of a contract (what producers promise: types, units,
ranges, owners); `schema.py` turns it into pandera checks, so the two cannot drift apart for
columns, and `tests/test_contracts.py` checks that the cross-field rules written in code are the
ones the YAML documents.

Versioning (semver): MAJOR when a change breaks consumers or producers (a column removed or
renamed, a unit or type changed, an allowed set or range narrowed); MINOR when it is additive (a
new nullable column, a wider range, a new allowed code); PATCH for wording only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

TABLES = ("flights", "weather", "planes")
DTYPES = ("integer", "float", "string", "boolean", "timestamp")
UNITLESS = "unitless"
"""The unit of identifiers, codes and flags: declared explicitly so a missing unit is an error."""
_SEMVER = re.compile(r"\d+\.\d+\.\d+")


class ContractSpecError(ValueError):
    """A contract file is malformed (names the file and the field)."""


@dataclass(frozen=True)
class Owner:
    team: str
    contact: str


@dataclass(frozen=True)
class ColumnSpec:
    """One column's promise: type, unit, nullability and the values it may take."""

    name: str
    dtype: str
    unit: str
    nullable: bool
    description: str
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    landing: bool = False
    """True for the CDC columns (_op, _lsn, ...) every landing row carries."""

    @property
    def constraint(self) -> str:
        """The allowed values in words, for the rendered contract."""
        parts = []
        if self.min is not None and self.max is not None:
            parts.append(f"[{self.min:g}, {self.max:g}]")
        elif self.min is not None:
            parts.append(f">= {self.min:g}")
        elif self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.allowed is not None:
            parts.append("{" + ", ".join(self.allowed) + "}")
        if self.pattern is not None:
            parts.append(f"/{self.pattern}/")
        return " ".join(parts)


@dataclass(frozen=True)
class RuleSpec:
    """A rule over several columns: `row` rules quarantine rows, `batch` rules judge the batch."""

    name: str
    kind: str
    columns: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class BreachPolicy:
    """When failing rows stop being noise to quarantine and become a broken batch.

    A check failing on more than `max_failure_share` of a batch's rows, and on at least
    `min_failing_rows` of them, means the source changed (a unit, a code list, a column's
    meaning): quarantining would silently starve training, so validation raises instead.
    The floor keeps a handful of bad rows in a small batch from stopping the pipeline.
    """

    max_failure_share: float = 0.05
    min_failing_rows: int = 10


@dataclass(frozen=True)
class ContractSpec:
    table: str
    version: str
    description: str
    owner: Owner
    key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    rules: tuple[RuleSpec, ...]
    breach: BreachPolicy
    landing_owner: Owner

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"contract {self.table} v{self.version} has no column {name!r}")

    def rules_of(self, kind: str) -> list[RuleSpec]:
        return [r for r in self.rules if r.kind == kind]


@cache
def load_contract(table: str) -> ContractSpec:
    """The contract of a landing table (flights, weather or planes), with the CDC columns."""
    if table not in TABLES:
        raise ValueError(
            f"no contract for table {table!r}; contracts exist for {', '.join(TABLES)}"
        )
    raw = _read(f"{table}.yaml")
    landing = _read("landing.yaml")
    where = f"{table}.yaml"
    version = str(_field(raw, "version", where))
    if not _SEMVER.fullmatch(version):
        raise ContractSpecError(f"{where}: version {version!r} is not MAJOR.MINOR.PATCH")
    columns = [_column(c, where) for c in _field(raw, "columns", where)]
    columns += [_column(c, "landing.yaml", landing=True) for c in landing["columns"]]
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ContractSpecError(f"{where}: duplicate column names in {names}")
    key = tuple(_field(raw, "key", where))
    if unknown := [k for k in key if k not in names]:
        raise ContractSpecError(f"{where}: key columns {unknown} are not columns of the contract")
    rules = tuple(_rule(r, where, names) for r in raw.get("rules", []))
    return ContractSpec(
        table=str(_field(raw, "table", where)),
        version=version,
        description=str(_field(raw, "description", where)).strip(),
        owner=_owner(_field(raw, "owner", where), where),
        key=key,
        columns=tuple(columns),
        rules=rules,
        breach=BreachPolicy(**raw.get("breach", {})),
        landing_owner=_owner(landing["owner"], "landing.yaml"),
    )


def _read(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ContractSpecError(f"{name}: expected a mapping at the top level")
    return data


def _field(raw: dict[str, Any], name: str, where: str) -> Any:
    if raw.get(name) in (None, "", []):
        raise ContractSpecError(f"{where}: missing required field {name!r}")
    return raw[name]


def _owner(raw: dict[str, Any], where: str) -> Owner:
    return Owner(team=str(_field(raw, "team", where)), contact=str(_field(raw, "contact", where)))


def _column(raw: dict[str, Any], where: str, landing: bool = False) -> ColumnSpec:
    name = str(_field(raw, "name", where))
    at = f"{where}, column {name}"
    dtype = str(_field(raw, "dtype", at))
    if dtype not in DTYPES:
        raise ContractSpecError(f"{at}: dtype {dtype!r} is not one of {DTYPES}")
    if "nullable" not in raw or not isinstance(raw["nullable"], bool):
        raise ContractSpecError(f"{at}: 'nullable' must be true or false")
    allowed = raw.get("allowed")
    return ColumnSpec(
        name=name,
        dtype=dtype,
        unit=str(_field(raw, "unit", at)),
        nullable=raw["nullable"],
        description=str(_field(raw, "description", at)).strip(),
        min=None if raw.get("min") is None else float(raw["min"]),
        max=None if raw.get("max") is None else float(raw["max"]),
        allowed=None if allowed is None else tuple(str(v) for v in allowed),
        pattern=raw.get("pattern"),
        landing=landing,
    )


def _rule(raw: dict[str, Any], where: str, names: list[str]) -> RuleSpec:
    name = str(_field(raw, "name", where))
    at = f"{where}, rule {name}"
    kind = str(_field(raw, "kind", at))
    if kind not in ("row", "batch"):
        raise ContractSpecError(f"{at}: kind must be 'row' or 'batch', not {kind!r}")
    columns = tuple(_field(raw, "columns", at))
    if unknown := [c for c in columns if c not in names]:
        raise ContractSpecError(f"{at}: unknown columns {unknown}")
    return RuleSpec(name, kind, columns, str(_field(raw, "description", at)).strip())
