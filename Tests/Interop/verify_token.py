#!/usr/bin/env python3
"""Verifies JWTs with PyJWT, a library nobody on this project wrote.

Each token is checked the way a third-party API would check a Gatehouse token:
the key comes from the live JWKS (PyJWKClient picks it by the token's `kid`,
and the key's own `alg` must match the token's), or, for HS256, from the
shared secret; the signature, `alg` (one of --algorithms), `iss`, `aud` (when
--audience is given; a token with `aud` fails without it), `exp` and `iat`
(with --leeway seconds, default 0) are checked, and `exp`, `iat`, `iss`, `sub`
must be present.

Tokens come as arguments, or one per line on standard input. For each token,
in order, one JSON line goes to standard output:
    {"header": {...}, "claims": {...}}                       verified
    {"error": "Signature has expired", "error_type": "ExpiredSignatureError"}
Exit status: 0 if every token verified, 1 if any was refused, 2 for a usage
error, 3 if PyJWT is not installed (run `make venv`).

Used by Tests/TestSupport/PyJWT.swift; by hand:
    .venv/bin/python Tests/Interop/verify_token.py \\
        --jwks-url http://127.0.0.1:8080/.well-known/jwks.json --issuer gatehouse --algorithms ES256 "$TOKEN"
"""

import argparse
import json
import sys

try:
    import jwt
except ImportError as error:
    print(f"verify_token.py: {error}; run `make venv` (Tests/Interop/requirements.txt)", file=sys.stderr)
    sys.exit(3)

REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub"]


def parse_arguments():
    parser = argparse.ArgumentParser(description="Verify JWTs with PyJWT; one JSON line per token.")
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--jwks-url", help="JWKS to take the key from, by the token's kid (RFC 7517)")
    key.add_argument("--secret", help="HMAC secret (HS256), as text (UTF-8)")
    parser.add_argument("--issuer", required=True, help="expected iss")
    parser.add_argument("--audience", help="expected aud; without it a token carrying aud is refused")
    parser.add_argument(
        "--algorithms", required=True, type=lambda text: [name for name in text.split(",") if name],
        help="accepted alg values, comma-separated: ES256 or RS256,ES256")
    parser.add_argument("--leeway", type=float, default=0, help="clock skew allowed on exp/iat/nbf, seconds")
    parser.add_argument("--timeout", type=float, default=10, help="seconds for the JWKS request")
    parser.add_argument("tokens", nargs="*", help="tokens; read from standard input (one a line) if none")
    return parser.parse_args()


def main():
    arguments = parse_arguments()
    tokens = arguments.tokens or [line.strip() for line in sys.stdin if line.strip()]
    if not tokens or not arguments.algorithms:
        # Verifying nothing must not pass for success.
        print("verify_token.py: no tokens or no algorithms given", file=sys.stderr)
        return 2
    jwks = jwt.PyJWKClient(arguments.jwks_url, timeout=arguments.timeout) if arguments.jwks_url else None

    all_verified = True
    for token in tokens:
        try:
            # The PyJWK itself, not its bare key: PyJWT then also refuses a
            # token whose alg differs from the alg the JWKS binds to the key.
            key = jwks.get_signing_key_from_jwt(token) if jwks else arguments.secret
            decoded = jwt.decode_complete(
                token,
                key,
                algorithms=arguments.algorithms,
                issuer=arguments.issuer,
                audience=arguments.audience,
                leeway=arguments.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
            result = {"header": decoded["header"], "claims": decoded["payload"]}
        except jwt.PyJWTError as error:
            all_verified = False
            result = {"error": str(error), "error_type": type(error).__name__}
        print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if all_verified else 1


if __name__ == "__main__":
    sys.exit(main())
