"""An independent OAuth client (Authlib, not written by us) against a running Letterlock server:
discovery, dynamic registration, the code flow with PKCE, a per-service token by refresh.

The browser step (sign in, approve) is done with `requests`, as a person's browser would; the
OAuth protocol work (authorization URL, PKCE, token requests) is Authlib's.

Usage: authlib_flow.py BASE_URL ADDRESS PASSWORD [RESOURCE]
Prints one JSON object with what it saw; exits non-zero on any failure.

Environment: LETTERLOCK_TEST_SCOPE replaces the scope asked for; LETTERLOCK_TEST_DPOP=1 registers
with dpop_bound_access_tokens and sends DPoP proofs (RFC 9449) with a new P-256 key, which is
printed as "dpop_key" (a private JWK) for the caller's own proofs.
"""

import json
import os
import secrets
import sys
import time
import urllib.parse

import requests
from browser import sign_in_and_decide
from authlib.integrations.requests_client import OAuth2Session
import warnings

warnings.simplefilter("ignore")
from authlib.jose import JsonWebKey, jwt  # noqa: E402


def dpop_proof(key, method, url, access_token=None, nonce=None):
    """A DPoP proof (RFC 9449 §4.2) signed with `key`."""
    import base64
    import hashlib

    claims = {"htm": method, "htu": url, "iat": int(time.time()), "jti": secrets.token_urlsafe(16)}
    if nonce:
        claims["nonce"] = nonce
    if access_token:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(is_private=False)}
    return jwt.encode(header, claims, key).decode()


def main(base, address, password, smtp_resource="smtps://mail.example.com"):
    dpop_key = JsonWebKey.generate_key("EC", "P-256", is_private=True) if os.environ.get("LETTERLOCK_TEST_DPOP") else None
    # Discovery (RFC 8414): the issuer in the document must be the one we asked.
    metadata = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["issuer"] == base, metadata
    assert "S256" in metadata["code_challenge_methods_supported"]

    # Registration (RFC 7591) of a native public client.
    redirect_uri = "http://127.0.0.1:50999/callback"
    registration = requests.post(
        metadata["registration_endpoint"],
        json={
            "redirect_uris": ["http://127.0.0.1/callback"],
            "client_name": "Authlib test client",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            **({"dpop_bound_access_tokens": True} if dpop_key else {}),
        },
        timeout=10,
    )
    assert registration.status_code == 201, registration.text
    client_id = registration.json()["client_id"]

    # Authorization request, built by Authlib with PKCE S256.
    scope = os.environ.get("LETTERLOCK_TEST_SCOPE", "urn:ietf:params:oauth:scope:mail offline_access")
    client = OAuth2Session(
        client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, login_hint=address
    )

    # The browser: sign in, approve, and catch the redirect to the loopback listener.
    location = sign_in_and_decide(requests.Session(), url, address, password, device_name="Authlib")
    parameters = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    # RFC 9207: the client checks iss before it uses the code (mix-up defence).
    assert parameters["iss"] == metadata["issuer"], parameters
    assert parameters["state"] == state, parameters

    # Token request by Authlib, with the PKCE verifier.
    nonce = None
    if dpop_key:
        # The server's nonce (RFC 9449 §8): the first proof without one is refused with it.
        first = requests.post(
            metadata["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": client_id},
            headers={"DPoP": dpop_proof(dpop_key, "POST", metadata["token_endpoint"])},
            timeout=10,
        )
        nonce = first.headers.get("DPoP-Nonce")
    proof = lambda: {"DPoP": dpop_proof(dpop_key, "POST", metadata["token_endpoint"], nonce=nonce)} if dpop_key else {}
    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier,
        headers=proof(),
    )
    assert token["token_type"].lower() == ("dpop" if dpop_key else "bearer"), token
    assert "refresh_token" in token, token

    # A token for SMTP by refresh, narrowed with `resource` (RFC 8707).
    refreshed = client.refresh_token(
        metadata["token_endpoint"],
        refresh_token=token["refresh_token"],
        resource=smtp_resource,
        headers=proof(),
    )
    print(
        json.dumps(
            {
                "client_id": client_id,
                "access_token": token["access_token"],
                "smtp_access_token": refreshed["access_token"],
                "rotated": refreshed["refresh_token"] != token["refresh_token"],
                "refresh_token": refreshed["refresh_token"],
                "dpop_key": dpop_key.as_dict(is_private=True) if dpop_key else None,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
