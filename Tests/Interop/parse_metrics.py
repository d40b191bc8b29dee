#!/usr/bin/env python3
"""Parses a Prometheus text exposition (format 0.0.4) with prometheus_client's
own parser, the one Python scrapers use, nobody on this project wrote.

The exposition comes on standard input (what GET /metrics answered). One JSON
object goes to standard output:
    {"families": [{"name": ..., "type": ..., "help": ...,
                   "samples": [{"name": ..., "labels": {...}, "value": ...}]}]}
Sample names are as written (`gatehouse_logins_total`, `..._bucket`); the
family name is the parser's (it drops `_total` from counters). Values that JSON
cannot hold are strings: "+Inf", "-Inf", "NaN".

The parser is lax, so this also refuses what it would let through: a sample
outside the family its HELP and TYPE lines opened (the parser makes it an
"untyped" family of its own), a family that appears twice, a family without a
HELP line, and a histogram whose buckets are not cumulative or whose +Inf
bucket is not its _count.

Exit status: 0 parsed, 1 not a valid exposition (the reason on stderr), 3 if
prometheus_client is not installed (run `make venv`).

Used by Tests/TestSupport/PrometheusText.swift; by hand:
    curl -s http://127.0.0.1:8080/metrics | .venv/bin/python Tests/Interop/parse_metrics.py
"""

import json
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as error:
    print(f"parse_metrics.py: {error}; run `make venv` (Tests/Interop/requirements.txt)", file=sys.stderr)
    sys.exit(3)


def value_for_json(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def check_histogram(family):
    series = {}
    for sample in family.samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        key = tuple(sorted(labels.items()))
        entry = series.setdefault(key, {"buckets": [], "count": None})
        if sample.name.endswith("_bucket"):
            entry["buckets"].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_count"):
            entry["count"] = sample.value
    for key, entry in series.items():
        buckets = entry["buckets"]
        if not buckets or buckets[-1][0] != math.inf:
            raise ValueError(f"{family.name}{dict(key)}: no +Inf bucket last")
        bounds = [bound for bound, _ in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"{family.name}{dict(key)}: buckets out of order")
        counts = [count for _, count in buckets]
        if any(later < earlier for earlier, later in zip(counts, counts[1:])):
            raise ValueError(f"{family.name}{dict(key)}: bucket counts are not cumulative")
        if entry["count"] != counts[-1]:
            raise ValueError(f"{family.name}{dict(key)}: _count {entry['count']} is not the +Inf bucket {counts[-1]}")


def main():
    text = sys.stdin.read()
    families = []
    seen = set()
    try:
        for family in text_string_to_metric_families(text):
            if family.type in ("untyped", "unknown"):
                raise ValueError(f"sample {family.samples[0].name} is outside the family its TYPE line opened")
            if family.name in seen:
                raise ValueError(f"family {family.name} appears twice")
            seen.add(family.name)
            if not family.documentation:
                raise ValueError(f"family {family.name} has no HELP text")
            if family.type == "histogram":
                check_histogram(family)
            families.append({
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "samples": [
                    {"name": sample.name, "labels": dict(sample.labels), "value": value_for_json(sample.value)}
                    for sample in family.samples
                ],
            })
    except Exception as error:  # the parser raises ValueError, and others for some malformed lines
        print(f"parse_metrics.py: not a valid exposition: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    json.dump({"families": families}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
