"""Small PromQL text helpers: Grafana's template variables, and the metric names an expression
reads. Not a parser: `promtool check rules` is the syntax check; this only lists identifiers so
tests can tell a typo in a metric name (a query that is valid and silently empty) from a real one.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_IDENT = re.compile(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    ["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
     "bool", "offset", "inf", "nan", "sum", "min", "max", "avg", "group", "stddev", "stdvar",
     "count", "count_values", "bottomk", "topk", "quantile"]
)  # fmt: skip
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def metric_names(expr: str) -> set[str]:
    """Series names an expression selects: identifiers that are not functions or keywords.

    >>> sorted(metric_names('sum by (le) (rate(x_bucket{a="b"}[5m])) / on () y offset 1d'))
    ['x_bucket', 'y']
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub(r"\1", text)
    text = _OFFSET.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name = match.group()
        if name.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # an aggregation, a function call or a keyword
        names.add(name)
    return names


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana variables ($role, ${role}, $__rate_interval); an unknown one is an error,
    so a query is never sent with a literal `$name` in it."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no value for dashboard variable ${name} in {expr!r}")
        return variables[name]

    return _VARIABLE.sub(value, expr)
