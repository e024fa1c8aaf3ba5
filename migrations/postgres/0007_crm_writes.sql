-- What Dealwatch last wrote onto each CRM record (a digest of the risk fields), so that only
-- changed scores are written back: a record whose digest matches is skipped, a failed write
-- leaves the old digest and is retried on the next pass.
CREATE TABLE crm_writes (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    deal_id    TEXT NOT NULL,
    digest     TEXT NOT NULL,
    written_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, deal_id)
);

ALTER TABLE crm_writes ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_writes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm_writes
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON crm_writes TO dealwatch_app;
