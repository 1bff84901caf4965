-- Letterlock's first schema (SQLite). Times are BIGINT seconds since the epoch, so that one set
-- of queries serves SQLite and PostgreSQL through sqlx's Any driver.

CREATE TABLE signing_keys (
    kid          TEXT    NOT NULL PRIMARY KEY,
    algorithm    TEXT    NOT NULL,
    private_key  BLOB    NOT NULL,
    created_at   BIGINT  NOT NULL,
    activates_at BIGINT  NOT NULL
);

CREATE TABLE sealing_keys (
    kid        TEXT   NOT NULL PRIMARY KEY,
    material   BLOB   NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- Clients registered in stored mode (RFC 7592). Stateless registrations never touch this table.
CREATE TABLE clients (
    client_id               TEXT   NOT NULL PRIMARY KEY,
    metadata                TEXT   NOT NULL,
    software_statement      TEXT,
    vendor                  TEXT,
    registration_token_hash TEXT   NOT NULL,
    client_secret_hash      TEXT,
    issued_at               BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
