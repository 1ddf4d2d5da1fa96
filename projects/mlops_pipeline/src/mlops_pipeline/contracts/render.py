"""Contracts as Markdown tables, for the book, the README and `mlops contracts show`."""

from __future__ import annotations

from mlops_pipeline.contracts.spec import ContractSpec, load_contract


def contract_markdown(spec: ContractSpec | str) -> str:
    """One contract as Markdown: header, owner, key, breach policy, columns and rules."""
    spec = load_contract(spec) if isinstance(spec, str) else spec
    policy = spec.breach
    lines = [
        f"### {spec.table} (contract v{spec.version})",
        "",
        spec.description,
        "",
        f"- Owner: {spec.owner.team} ({spec.owner.contact}); CDC columns: "
        f"{spec.landing_owner.team} ({spec.landing_owner.contact})",
        f"- Key: {', '.join(spec.key)} (a delete row needs only the key)",
        f"- Breach: a check failing on more than {policy.max_failure_share:.0%} of a batch's rows "
        f"(and at least {policy.min_failing_rows}), a missing column or a wrong type",
        "",
        "| column | type | unit | nullable | allowed | description |",
        "|---|---|---|---|---|---|",
    ]
    for c in spec.columns:
        cells = [f"`{c.name}`", c.dtype, c.unit, "yes" if c.nullable else "no"]
        cells += [_cell(c.constraint) or "any", _cell(c.description)]
        lines.append("| " + " | ".join(cells) + " |")
    if spec.rules:
        lines += ["", "| rule | kind | columns | description |", "|---|---|---|---|"]
        for r in spec.rules:
            columns = ", ".join(f"`{c}`" for c in r.columns)
            lines.append(f"| `{r.name}` | {r.kind} | {columns} | {_cell(r.description)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
