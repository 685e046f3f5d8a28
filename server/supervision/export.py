"""The supervision export for a provincial supervision platform: the statistics as CSV or JSON, in the
schema docs/supervision.md documents (``schema_version`` says which)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping

from ..errors import N_, ValidationFailed
from .statistics import FIELDS, Statistics, StatisticsQuery

FORMATS = ("csv", "json")


def split_query(query: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The export's format (``json`` unless asked otherwise) and the filters, which the page shares."""
    filters = {k: v for k, v in query.items() if k != "format" and v != ""}
    kind = query.get("format", "json")
    if kind not in FORMATS:
        raise ValidationFailed({"format": N_("Choose csv or json.")})
    return kind, filters


def to_csv(stats: Statistics) -> str:
    """One line per hospital and month, the columns in ``FIELDS`` order; an empty cell where a share or a
    duration has nothing to be taken of. Numbers are written with a point, whatever the reader's language."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for row in stats.rows:
        writer.writerow(["" if row[name] is None else row[name] for name in FIELDS])
    return out.getvalue()


def to_json(stats: Statistics) -> str:
    return json.dumps(stats.to_json(), ensure_ascii=False, indent=1)


def filename(stats: Statistics, kind: str) -> str:
    return f"telemed-supervision-{stats.from_month}-{stats.to_month}.{kind}"


__all__ = ["FORMATS", "StatisticsQuery", "filename", "split_query", "to_csv", "to_json"]
