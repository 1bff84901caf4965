-- A refresh that survives a lost response (issue 16, RFC 9700 §4.14.2's grace period). When a
-- refresh token is rotated, the answer it got is kept with it for a short window, sealed under a
-- key derived from that old token (which the store never holds: only its hash), so that the same
-- installation retrying with it gets the same answer instead of revoking the grant. The answer is
-- erased when the window ends or when its successor is used.
--   replaces:     on a token issued by a refresh, the hash of the token it replaced
--   retry_answer: on a rotated token, the sealed answer (base64url), until retry_until
ALTER TABLE refresh_tokens ADD COLUMN replaces TEXT;
ALTER TABLE refresh_tokens ADD COLUMN retry_answer TEXT;
ALTER TABLE refresh_tokens ADD COLUMN retry_until BIGINT;
-- Only rotated tokens inside their window are in it, so purging walks a handful of rows.
CREATE INDEX refresh_tokens_retry_until ON refresh_tokens (retry_until) WHERE retry_until IS NOT NULL;
