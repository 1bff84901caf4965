-- A second factor for the sign-in page (issue 17): TOTP (RFC 6238) with recovery codes, and the
-- sign-ins that wait for one.
--   totp_factors:     one per user. secret is the RFC 4648 base32 text of 20 random bytes,
--                     shown once at set-up and never again; confirmed is 0 until the person
--                     typed a first code (an unconfirmed secret protects nothing); last_step is
--                     the RFC 6238 time step of the last code accepted, so a code is used once.
--   recovery_codes:   ten per user, SHA-256 of the user id and the code (never the code);
--                     used_at once used.
--   pending_sign_ins: a sign-in whose password was right and whose second factor is due: the
--                     browser holds the id (its own cookie), the table its hash. Never a
--                     session: nothing that asks for a session reads this table.
CREATE TABLE totp_factors (
    user_id    TEXT   NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT   NOT NULL,
    confirmed  BIGINT NOT NULL DEFAULT 0,
    last_step  BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE pending_sign_ins (
    id_hash    TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT   NOT NULL,
    method     TEXT   NOT NULL,
    next       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_sign_ins_expires_at ON pending_sign_ins (expires_at);
