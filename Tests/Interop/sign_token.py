#!/usr/bin/env python3
"""Signs a JWT with PyJWT and a key Gatehouse never had: a forgery, for tests
that check Gatehouse refuses it.

The claims are a JSON object on standard input (or --claims). The key is made
fresh for each run (RS256: RSA 2048, ES256: EC P-256, EdDSA: Ed25519), or for
HS256 is --secret (default: 32 random bytes). The header is PyJWT's
{"alg", "typ": "JWT"} plus "kid" when --kid is given (give it the kid of a
real Gatehouse key to make the forgery look like one of its tokens).
Prints the token. Exit status: 0, 2 for a usage error, 3 if PyJWT is not
installed (run `make venv`).

Used by Tests/TestSupport/PyJWT.swift; by hand:
    echo '{"sub": "x", "iss": "gatehouse"}' | .venv/bin/python Tests/Interop/sign_token.py --algorithm ES256 --kid K
"""

import argparse
import json
import secrets
import sys

try:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as error:
    print(f"sign_token.py: {error}; run `make venv` (Tests/Interop/requirements.txt)", file=sys.stderr)
    sys.exit(3)

FRESH_KEYS = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
    "HS256": lambda: secrets.token_bytes(32),
}


def main():
    parser = argparse.ArgumentParser(description="Sign a JWT with a fresh key (a forgery for tests).")
    parser.add_argument("--algorithm", required=True, choices=sorted(FRESH_KEYS))
    parser.add_argument("--kid", help="the header's kid")
    parser.add_argument("--secret", help="HS256 only: the secret, as text (default: random)")
    parser.add_argument("--claims", help="the claims as a JSON object (default: read from standard input)")
    arguments = parser.parse_args()
    if arguments.secret is not None and arguments.algorithm != "HS256":
        parser.error("--secret goes with --algorithm HS256 only")

    claims = json.loads(arguments.claims if arguments.claims is not None else sys.stdin.read())
    if not isinstance(claims, dict):
        parser.error("the claims must be a JSON object")
    key = arguments.secret if arguments.secret is not None else FRESH_KEYS[arguments.algorithm]()
    headers = {"kid": arguments.kid} if arguments.kid is not None else None
    print(jwt.encode(claims, key, algorithm=arguments.algorithm, headers=headers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
