-- Letterlock's first schema (SQLite). Times are BIGINT seconds since the epoch, so that one set
-- of queries serves SQLite and PostgreSQL through sqlx's Any driver.

CREATE TABLE signing_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kid          TEXT    NOT NULL UNIQUE,
    algorithm    TEXT    NOT NULL,
    private_key  BLOB    NOT NULL,
    created_at   BIGINT  NOT NULL,
    activates_at BIGINT  NOT NULL
);

CREATE TABLE sealing_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kid        TEXT   NOT NULL UNIQUE,
    material   BLOB   NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- Keys keep an insertion sequence (id) so that two keys made in the same second still have
-- an order: the newest sealing key seals.

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
