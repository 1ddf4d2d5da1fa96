"""The source database's tables, described once and rendered as DDL, Arrow and pandas types.

The replayer (Python values -> SQL), the CDC decoder (PostgreSQL text -> Arrow columns) and the
landing reader (Parquet -> pandas dtypes matching `mlops_pipeline.data`) all need the same column
list and types. Keeping one description here means a column added to a table cannot silently
reach one stage and not another.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

PUBLICATION = "mlops_pub"
"""The publication the CDC slot decodes: the three tables, inserts, updates and deletes."""


@dataclass(frozen=True)
class Column:
    """One column: its SQL type, and the Arrow and pandas types it lands as."""

    name: str
    kind: str  # 'int', 'float', 'text', 'bool', 'timestamptz'
    nullable: bool = True
    sql_type: str | None = None  # defaults by kind; 'int' columns may be 'integer' or 'bigint'

    @property
    def sql(self) -> str:
        default = {
            "int": "integer",
            "float": "double precision",
            "text": "text",
            "bool": "boolean",
            "timestamptz": "timestamptz",
        }[self.kind]
        return self.sql_type or default

    @property
    def arrow(self) -> pa.DataType:
        return {
            "int": pa.int64(),
            "float": pa.float64(),
            "text": pa.string(),
            "bool": pa.bool_(),
            "timestamptz": pa.timestamp("us", tz="UTC"),
        }[self.kind]

    @property
    def pandas(self) -> str:
        """The dtype `mlops_pipeline.data` uses, so landed rows compare equal to the dataset."""
        if self.kind == "int":
            return "Int64" if self.nullable else "int64"
        return {
            "float": "float64",
            "text": "string",
            "bool": "bool",
            "timestamptz": "datetime64[ns, UTC]",
        }[self.kind]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    def ddl(self) -> str:
        lines = [
            f"    {c.name} {c.sql}"
            + (" NOT NULL" if not c.nullable else "")
            + (" DEFAULT false" if c.kind == "bool" else "")
            for c in self.columns
        ]
        lines.append(f"    PRIMARY KEY ({', '.join(self.key)})")
        body = ",\n".join(lines)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n{body}\n)"


def _c(name: str, kind: str, nullable: bool = True, sql_type: str | None = None) -> Column:
    return Column(name, kind, nullable, sql_type)


RECORDED_AT = _c("recorded_at", "timestamptz", nullable=False)

FLIGHTS = Table(
    "flights",
    (
        _c("flight_id", "int", False, "bigint"),
        _c("carrier", "text"),
        _c("flight", "int", False),
        _c("tailnum", "text"),
        _c("origin", "text"),
        _c("dest", "text"),
        _c("distance", "int", False),
        _c("sched_dep", "timestamptz"),
        _c("dep_at", "timestamptz"),
        _c("dep_delay", "float"),
        _c("arr_delay", "float"),
        _c("cancelled", "bool", False),
        RECORDED_AT,
    ),
    ("flight_id",),
)
WEATHER = Table(
    "weather",
    (
        _c("origin", "text", False),
        _c("obs_hour", "timestamptz", False),
        *(
            _c(name, "float")
            for name in (
                "temp",
                "dewp",
                "humid",
                "wind_dir",
                "wind_speed",
                "wind_gust",
                "precip",
                "pressure",
                "visib",
            )  # fmt: skip
        ),
        RECORDED_AT,
    ),
    ("origin", "obs_hour"),
)
PLANES = Table(
    "planes",
    (
        _c("tailnum", "text", False),
        _c("year", "int"),
        _c("type", "text"),
        _c("manufacturer", "text"),
        _c("model", "text"),
        _c("engines", "int", False),
        _c("seats", "int", False),
        _c("speed", "float"),
        _c("engine", "text"),
        RECORDED_AT,
    ),
    ("tailnum",),
)
TABLES: dict[str, Table] = {t.name: t for t in (FLIGHTS, WEATHER, PLANES)}

META_ARROW = [
    pa.field("_op", pa.string()),
    pa.field("_lsn", pa.int64()),
    pa.field("_seq", pa.int64()),
    pa.field("_commit_time", pa.timestamp("us", tz="UTC")),
]
"""Columns the CDC adds to every landed row: op ('s','i','u','d'), position, commit wall time."""


def table(name: str) -> Table:
    """The table called `name`, or an error listing the known ones."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; the source has {sorted(TABLES)}") from None


def landing_schema(name: str) -> pa.Schema:
    """The Arrow schema of one table's landing files: its columns, then the CDC columns."""
    t = table(name)
    return pa.schema([pa.field(c.name, c.arrow, nullable=True) for c in t.columns] + META_ARROW)


def ddl() -> list[str]:
    """Statements that create the tables and publication; safe to run on an existing database.

    REPLICA IDENTITY FULL makes every delete (and update) carry the whole old row, so a delete
    lands with the values it removed, not only its key.
    """
    statements = []
    for t in TABLES.values():
        statements.append(t.ddl())
        statements.append(f"ALTER TABLE {t.name} REPLICA IDENTITY FULL")
    names = ", ".join(TABLES)
    statements.append(
        "DO $$ BEGIN\n"
        f"  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '{PUBLICATION}') THEN\n"
        f"    CREATE PUBLICATION {PUBLICATION} FOR TABLE {names}\n"
        "      WITH (publish = 'insert, update, delete');\n"
        "  END IF;\n"
        "END $$"
    )
    return statements


def create_schema(conninfo: str) -> None:
    """Create the three tables (REPLICA IDENTITY FULL) and the publication, if missing.

    TRUNCATE is not published: the landing zone has no way to express it, so the source must
    not emit it (the CDC decoder still recognises one and refuses it with a clear error).
    """
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in ddl():
            conn.execute(statement)
