-- Every Source setting imgix users know, the deployment status, and custom
-- domains.
--
-- Same portability rules as 0001: TEXT and BIGINT only (booleans are 0/1),
-- named unique constraints, no SQLite-only syntax.
--
-- Enumerations are stored as their lowercase names:
--   cache_ttl_behavior: respect_origin | override_origin | enforce_minimum
--   status: pending | deploying | deployed | failed
ALTER TABLE sources ADD COLUMN cache_ttl_behavior TEXT NOT NULL DEFAULT 'respect_origin';
ALTER TABLE sources ADD COLUMN cache_ttl_error_seconds BIGINT NOT NULL DEFAULT 300;
ALTER TABLE sources ADD COLUMN image_missing TEXT NOT NULL DEFAULT '';
ALTER TABLE sources ADD COLUMN image_missing_append_params BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN image_error TEXT NOT NULL DEFAULT '';
ALTER TABLE sources ADD COLUMN image_error_append_params BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN secure_url_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE sources ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE sources ADD COLUMN status_message TEXT NOT NULL DEFAULT '';
ALTER TABLE sources ADD COLUMN last_deployed_at BIGINT NOT NULL DEFAULT 0;
-- Identifies the deploy in flight; a deploy's result is recorded only if it
-- is still the current one (an edit or a newer deploy supersedes it).
ALTER TABLE sources ADD COLUMN deploy_id TEXT NOT NULL DEFAULT '';
-- Empty when the Source has no upload credentials.
ALTER TABLE sources ADD COLUMN upload_access_key_id TEXT NOT NULL DEFAULT '';

-- Sources that existed before deploys did were serving: keep them serving.
UPDATE sources SET status = 'deployed',
    status_message = 'serving since before deploys existed; deploy to verify it';

-- Extra host names routed to a Source. The primary key makes every domain
-- unique across all Sources, decided by the database under concurrency.
CREATE TABLE source_domains (
    domain TEXT NOT NULL,
    source_id TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    CONSTRAINT source_domains_pkey PRIMARY KEY (domain)
);

CREATE INDEX source_domains_source_id ON source_domains (source_id);
