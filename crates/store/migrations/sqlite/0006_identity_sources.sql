-- Identity sources (issue 17). A person may be proved by a source other than this table's
-- password hash: Dovecot's auth service, an LDAP directory, an upstream OpenID provider. Their
-- row here keeps what every grant and session hangs on (the id and the address); it has no
-- password hash ('') when no local password was ever set.
--   source:     the configured name of the source that last proved the person ('local' for
--               this table's own password)
--   checked_at: when that source last vouched for them (a sign-in, or the refresh re-check)
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE users ADD COLUMN checked_at BIGINT NOT NULL DEFAULT 0;
