-- Named, scoped credentials of the admin API, and the audit log of changes.
--
-- admin_tokens: like api_keys, the token itself is never stored;
-- secret_sha256 is the lowercase hex SHA-256 of the whole token (`imat_` +
-- 64 hex digits of 32 random bytes). scope is `read_only`, `source_admin`
-- or `full_admin`; source_ids the space-separated Source ids a
-- `source_admin` token may act on (empty for the other scopes).
-- expires_at and revoked_at are Unix seconds; 0 for never and for live.
CREATE TABLE admin_tokens (
    id TEXT NOT NULL CONSTRAINT admin_tokens_pkey PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL CONSTRAINT admin_tokens_secret_sha256_key UNIQUE,
    scope TEXT NOT NULL,
    source_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT NOT NULL DEFAULT 0
);

-- One row per change made through the admin API (or a token managed by the
-- CLI): when (Unix microseconds), the credential's name, the action, the
-- Source it touched (empty for none), the names of the fields it changed
-- (space-separated, never their values), the id of the key or token it
-- created or revoked (empty for none) and the result (`ok` or an error
-- code). id is random; rows are read newest first by (at_micros, id).
CREATE TABLE audit_log (
    id TEXT NOT NULL CONSTRAINT audit_log_pkey PRIMARY KEY,
    at_micros BIGINT NOT NULL,
    credential TEXT NOT NULL,
    action TEXT NOT NULL,
    source_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    target_id TEXT NOT NULL,
    result TEXT NOT NULL
);

CREATE INDEX audit_log_at ON audit_log (at_micros);
CREATE INDEX audit_log_source ON audit_log (source_id, at_micros);
