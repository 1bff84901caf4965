"""An independent OpenID Connect client (Authlib's `authlib.oidc.core`, not written by us) against a
running Letterlock server, signing a person in as a webmail would: OpenID Connect discovery,
registration of a confidential web client (client_secret_basic), the code flow with PKCE and a
nonce, validation of the ID token (signature by the JWKS, iss, aud, azp, exp, nonce), and
UserInfo by GET and POST.

The browser step (sign in, approve) is `browser.py`'s, with `requests`; the OAuth and OpenID
Connect work is Authlib's.

Usage: authlib_oidc.py BASE_URL ADDRESS PASSWORD SCOPE
Prints one JSON object with what it saw; exits non-zero on any failure.
"""

import json
import secrets
import sys
import urllib.parse
import warnings

import requests
from browser import sign_in_and_decide
from authlib.integrations.requests_client import OAuth2Session

warnings.simplefilter("ignore")
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402


def validated(id_token, jwks, issuer, client_id, nonce):
    """OpenID Connect Core §3.1.3.7, by Authlib: the signature by a key of the JWKS, then the
    claims."""
    claims = jwt.decode(
        id_token,
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "nonce": {"essential": True},
        },
        claims_params={"nonce": nonce, "client_id": client_id},
    )
    claims.validate(leeway=30)
    return claims


def main(base, address, password, scope):
    # OpenID Connect Discovery §4: the issuer's openid-configuration.
    metadata = requests.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["issuer"] == base, metadata
    for member in ["userinfo_endpoint", "jwks_uri", "subject_types_supported",
                   "id_token_signing_alg_values_supported", "response_types_supported"]:
        assert member in metadata, member
    assert "openid" in metadata["scopes_supported"], metadata

    # A webmail registers as a confidential web client and gets a secret (RFC 7591 §3.2.1).
    redirect_uri = "https://webmail.example.com/index.php/login/oauth"
    registration = requests.post(
        metadata["registration_endpoint"],
        json={
            "redirect_uris": [redirect_uri],
            "client_name": "Authlib webmail",
            "application_type": "web",
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": scope,
        },
        timeout=10,
    )
    assert registration.status_code == 201, registration.text
    registered = registration.json()
    client_id, client_secret = registered["client_id"], registered["client_secret"]

    client = OAuth2Session(
        client_id,
        client_secret,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    location = sign_in_and_decide(requests.Session(), url, address, password, device_name="Webmail")
    parameters = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert parameters["iss"] == metadata["issuer"], parameters
    assert parameters["state"] == state, parameters
    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    assert "id_token" in token, token

    jwks = requests.get(metadata["jwks_uri"], timeout=10).json()
    claims = validated(token["id_token"], jwks, metadata["issuer"], client_id, nonce)
    # The check has teeth: another nonce, another client, another issuer are refused.
    refusals = []
    for name, arguments in [
        ("nonce", (metadata["issuer"], client_id, "another-nonce")),
        ("aud", (metadata["issuer"], "another-client", nonce)),
        ("iss", ("https://evil.example", client_id, nonce)),
    ]:
        try:
            validated(token["id_token"], jwks, *arguments)
        except Exception as error:  # noqa: BLE001
            # Authlib raises its own InvalidClaimError or, since 1.6, joserfc's.
            if type(error).__name__ != "InvalidClaimError":
                raise
            refusals.append(name)

    # OpenID Connect Core §5.3.1: UserInfo by GET and POST with the access token (Bearer).
    userinfo_get = client.get(metadata["userinfo_endpoint"], timeout=10)
    assert userinfo_get.status_code == 200, userinfo_get.text
    userinfo_post = client.post(metadata["userinfo_endpoint"], timeout=10)
    assert userinfo_post.status_code == 200, userinfo_post.text
    anonymous = requests.get(metadata["userinfo_endpoint"], timeout=10)

    print(
        json.dumps(
            {
                "client_id": client_id,
                "scope": token.get("scope"),
                "id_token_claims": dict(claims),
                "refusals": refusals,
                "userinfo": userinfo_get.json(),
                "userinfo_post": userinfo_post.json(),
                "anonymous_status": anonymous.status_code,
                "anonymous_challenge": anonymous.headers.get("WWW-Authenticate"),
                "access_token": token["access_token"],
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
