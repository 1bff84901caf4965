-- The redirect URIs the person approved for a grant (a JSON array of strings). A returning
-- installation that proves its key or secret at the token endpoint skips the consent page only
-- for one of these (RFC 8252 §8.6); grants made before this column existed have none, so the
-- person is asked once more.
ALTER TABLE grants ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
