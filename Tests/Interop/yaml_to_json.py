"""YAML to JSON with PyYAML (yaml.safe_load), for the tests that hold
Gatehouse's own YAML reader (Sources/AuthService/OpenAPI/YAML.swift) to it.

    yaml_to_json.py FILE      prints FILE as JSON
    yaml_to_json.py --batch   reads a JSON array of YAML texts on standard
                              input; prints a JSON array with, for each,
                              {"value": <the document>} or {"error": "<why>"}

Mapping keys come out as json.dumps writes them (200 -> "200"). A document
JSON cannot hold (a date, NaN) is an error. Exit status: 0 when every
document was printed, 1 when FILE is not YAML, 2 for bad usage, 3 when PyYAML
is missing.
"""

import json
import sys

try:
    import yaml
except ImportError:
    print("PyYAML is not installed in this interpreter: run `make venv`", file=sys.stderr)
    sys.exit(3)


def to_json(text):
    value = yaml.safe_load(text)
    # allow_nan=False: NaN and infinities are not JSON.
    return json.loads(json.dumps(value, allow_nan=False))


def main(arguments):
    if arguments == ["--batch"]:
        results = []
        for text in json.load(sys.stdin):
            try:
                results.append({"value": to_json(text)})
            except (yaml.YAMLError, TypeError, ValueError) as error:
                results.append({"error": f"{type(error).__name__}: {error}"})
        print(json.dumps(results))
        return 0
    if len(arguments) == 1 and not arguments[0].startswith("-"):
        with open(arguments[0], encoding="utf-8") as file:
            text = file.read()
        try:
            print(json.dumps(to_json(text)))
        except (yaml.YAMLError, TypeError, ValueError) as error:
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
