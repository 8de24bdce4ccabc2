-- Sources: the S3 buckets imgmesh renders from.
--
-- Portable between SQLite and PostgreSQL: only TEXT and BIGINT columns, named
-- unique indexes (the registry maps their violations to ALREADY_EXISTS), no
-- AUTOINCREMENT, no SQLite-only syntax.
--
-- The secret access key is never stored in plaintext: `secret_access_key_sealed`
-- is base64 of nonce || AES-256-GCM ciphertext, bound to the row's id, and
-- `secret_key_id` names the master key that sealed it.
CREATE TABLE sources (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    subdomain TEXT NOT NULL,
    bucket TEXT NOT NULL,
    region TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    path_prefix TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    secret_access_key_sealed TEXT NOT NULL,
    secret_key_id TEXT NOT NULL,
    default_params TEXT NOT NULL,
    cache_ttl_seconds BIGINT NOT NULL,
    config_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX sources_name_key ON sources (name);

CREATE UNIQUE INDEX sources_subdomain_key ON sources (subdomain);
