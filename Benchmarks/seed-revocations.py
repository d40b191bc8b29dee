"""Adds N revoked sessions to a Gatehouse SQLite store, for the benchmark that
shows token checks cost the same with a large in-memory revocation set.

Usage: python3 Benchmarks/seed-revocations.py <gatehouse.db> <count>

The rows go to deleted_sessions (sessions of deleted accounts, kept until they
expire), which the service loads into its revocation set at start-up like any
other revoked session. Standard library only.
"""

import secrets
import sqlite3
import sys
import time


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    expires_at = int(time.time()) + 86_400
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO deleted_sessions (id, expires_at) VALUES (?, ?)",
            ((secrets.token_urlsafe(16), expires_at) for _ in range(count)),
        )
    total = connection.execute("SELECT count(*) FROM deleted_sessions").fetchone()[0]
    connection.close()
    print(f"seeded {count} revoked sessions ({total} in the store)")


if __name__ == "__main__":
    main()
