-- The revocation feed also carries RFC 7009 revocations of single access tokens: such an entry
-- names the token's jti beside its grant, and front doors refuse that token only. Entries
-- without token_id revoke the whole grant, as before.
ALTER TABLE revocations ADD COLUMN token_id TEXT;
