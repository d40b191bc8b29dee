"""Runs the schemathesis command line (`schemathesis <arguments>`) with one fix
for the Python the tests run on.

CPython before 3.11.9 / 3.12.3 keeps the recursion depth of `ast.parse`'s
AST-to-object conversion in one per-interpreter struct (python/cpython#106905):
two threads parsing at once corrupt it and one fails with "SystemError: AST
constructor recursion depth mismatch". Hypothesis parses source files with
`ast.parse` to describe the lambdas schemathesis filters its strategies with,
and schemathesis runs with `--workers 2`: once the document had path
parameters, a run on a loaded machine failed that way now and then
(an error in schemathesis, not a finding about Gatehouse). A lock around
`ast.parse` keeps two parses from overlapping.
"""

import ast
import sys
import threading

_parse = ast.parse
_lock = threading.Lock()


def _serialized_parse(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)


ast.parse = _serialized_parse

from schemathesis.cli import schemathesis  # noqa: E402 (after the patch, on purpose)

if __name__ == "__main__":
    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())
