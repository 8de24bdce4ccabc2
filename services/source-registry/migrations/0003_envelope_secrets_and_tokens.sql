-- Secrets under envelope encryption, and secure URL tokens.
--
-- Every secret row holds the secret sealed with its own data key (nonce,
-- ciphertext) and that data key wrapped by a master key (wrapped_dek,
-- kek_id); all byte strings are base64 TEXT. Rotating the master key
-- rewrites only wrapped_dek and kek_id, one row at a time.
--
-- field is `secret_access_key` (read credentials) or
-- `upload_secret_access_key` (upload credentials, never used for reads).
--
-- The sources columns secret_access_key_sealed and secret_key_id (0001)
-- held secrets sealed directly by the master key; the registry converts them
-- into source_secrets rows when it starts and empties them.
CREATE TABLE source_secrets (
    source_id TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped_dek TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    CONSTRAINT source_secrets_pkey PRIMARY KEY (source_id, field)
);

CREATE INDEX source_secrets_kek_id ON source_secrets (kek_id);

-- Tokens a Source accepts for `s` signatures, sealed like secrets (the
-- field bound into their associated data is `secure_url_token/<id>`).
-- expires_at is Unix seconds; 0 means no end.
CREATE TABLE secure_tokens (
    source_id TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped_dek TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT secure_tokens_pkey PRIMARY KEY (source_id, id)
);

CREATE INDEX secure_tokens_kek_id ON secure_tokens (kek_id);
