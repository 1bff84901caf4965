-- Sign-ins in flight at an upstream OpenID provider (issue 17): between the redirect to the
-- provider and its answer at the callback. Each is used once (taken by DELETE ... RETURNING)
-- and lives a few minutes.
--   state_hash: SHA-256 (base64url) of the `state` sent to the provider; the value itself is
--               never stored, so a read of this table cannot finish anyone's sign-in
--   record:     JSON: the provider's name, the hash of the browser's binding cookie, the nonce,
--               the PKCE code verifier, and where the browser goes afterwards
CREATE TABLE upstream_sign_ins (
    state_hash TEXT   NOT NULL PRIMARY KEY,
    record     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX upstream_sign_ins_expires_at ON upstream_sign_ins (expires_at);
