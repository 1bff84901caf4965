-- Accounts, sign-in sessions, pending authorization requests, grants (one per user and
-- installation: the "devices" a user sees), codes, refresh tokens and replay caches.
-- Secrets (session ids, codes, refresh tokens) are stored only as SHA-256 hashes.

CREATE TABLE users (
    id                  TEXT   NOT NULL PRIMARY KEY,
    address             TEXT   NOT NULL UNIQUE,
    password_hash       TEXT   NOT NULL,
    disabled            BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash    TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE authorization_requests (
    id         TEXT   NOT NULL PRIMARY KEY,
    request    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE grants (
    id               TEXT   NOT NULL PRIMARY KEY,
    user_id          TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id        TEXT   NOT NULL,
    device_name      TEXT   NOT NULL,
    client_name      TEXT   NOT NULL,
    software_id      TEXT,
    software_version TEXT,
    vendor           TEXT,
    scope            TEXT   NOT NULL,
    resources        TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    last_used_at     BIGINT NOT NULL,
    last_address     TEXT,
    revoked_at       BIGINT
);
CREATE INDEX grants_by_user ON grants (user_id, client_id);
CREATE INDEX grants_by_revocation ON grants (revoked_at);

CREATE TABLE codes (
    hash       TEXT   NOT NULL PRIMARY KEY,
    grant_id   TEXT   NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    details    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE refresh_tokens (
    hash       TEXT   NOT NULL PRIMARY KEY,
    grant_id   TEXT   NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    jkt        TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);

-- Device authorization requests (RFC 8628): the device polls with the device code (stored as a
-- hash); the person types the user code on the verification page.
CREATE TABLE device_codes (
    hash         TEXT   NOT NULL PRIMARY KEY,
    user_code    TEXT   NOT NULL UNIQUE,
    request      TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    grant_id     TEXT,
    expires_at   BIGINT NOT NULL,
    last_poll_at BIGINT NOT NULL
);

-- The revocation feed: every revoked grant, in order, for front doors that close live sessions.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id   TEXT   NOT NULL,
    revoked_at BIGINT NOT NULL
);

-- One-time values (client assertion and DPoP proof jti, revoked access token jti), kept until
-- they would have expired anyway.
CREATE TABLE seen_once (
    key        TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
