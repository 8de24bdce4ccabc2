-- API keys for the public gRPC render API (imgmesh.image.v1).
--
-- The key itself is never stored: secret_sha256 is the lowercase hex
-- SHA-256 of the whole key (`imk_` + 64 hex digits of 32 random bytes), so
-- a leaked database cannot be used to call the API. operations is the
-- space-separated list of what the key may do (`render`, `describe`; the
-- same list will carry admin scopes later), source_ids the space-separated
-- Source ids it may use, or `*` for every Source. revoked_at is Unix
-- seconds; 0 while the key is live.
CREATE TABLE api_keys (
    id TEXT NOT NULL CONSTRAINT api_keys_pkey PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL CONSTRAINT api_keys_secret_sha256_key UNIQUE,
    operations TEXT NOT NULL,
    source_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL DEFAULT 0
);
