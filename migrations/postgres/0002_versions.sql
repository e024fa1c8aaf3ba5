-- Counters bumped in the same transaction as every change to a tenant's deals or models
-- (data_version) and to its stored scores (scores_version), so that a server can tell in one
-- primary-key lookup whether what it keeps in memory is stale.
ALTER TABLE tenants ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN scores_version BIGINT NOT NULL DEFAULT 0;

