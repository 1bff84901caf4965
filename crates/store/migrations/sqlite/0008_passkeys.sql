-- Passkeys (issue 17): the WebAuthn credentials people register on the account page, and the
-- challenges of both ceremonies, single use and short-lived.
--   credential_id: the credential id, base64url (what the authenticator returns as rawId)
--   public_key:    the credential public key as a COSE_Key, the CBOR bytes the authenticator sent
--   sign_count:    the last signature counter seen (0 for authenticators that keep none); a
--                  counter that does not grow is a cloned authenticator (WebAuthn §6.1.1)
--   aaguid:        the authenticator model, hex (zero under "none" attestation)
--   transports:    the browser's transport hints, space-separated
CREATE TABLE passkeys (
    credential_id TEXT   NOT NULL PRIMARY KEY,
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key    BLOB   NOT NULL,
    sign_count    BIGINT NOT NULL,
    name          TEXT   NOT NULL,
    aaguid        TEXT   NOT NULL,
    transports    TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_by_user ON passkeys (user_id);

-- A challenge is taken (deleted) by the ceremony that answers it, whatever the outcome, so an
-- assertion can never be replayed. It is bound to the browser that asked for it: the hash of
-- the session id (registration, with the signed-in user) or of the sign-in token (sign-in).
CREATE TABLE passkey_challenges (
    challenge_hash TEXT   NOT NULL PRIMARY KEY,
    purpose        TEXT   NOT NULL,
    user_id        TEXT,
    bound_to       TEXT   NOT NULL,
    expires_at     BIGINT NOT NULL
);
