-- The alert outbox. Every alert is a row written in the same transaction as the change that
-- raised it (new scores, an insight run), then delivered by a sender that moves it through
-- pending -> sending -> sent, or failed -> (retried with backoff) -> escalated to a fallback
-- channel after three failures. Scheduling columns are epoch milliseconds, compared as numbers.
CREATE TABLE alerts (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    alert_id         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    priority         TEXT NOT NULL CHECK (priority IN ('p1', 'p2', 'p3')),
    -- What the alert is about: a deal id, a segment, a rep, the pipeline.
    subject          TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    channel          TEXT NOT NULL,
    -- At most one alert per key: retries and concurrent writers cannot raise it twice.
    dedup_key        TEXT NOT NULL,
    -- The facts the message templates render.
    payload          JSONB NOT NULL,
    -- For deal alerts: the score alerted on (material-change rule).
    score            BIGINT,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'escalated', 'suppressed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL,
    -- Not before (quiet hours, backoff).
    due_ms           BIGINT NOT NULL,
    -- A sender's claim on a row in 'sending' runs until then; after it another may take over.
    lease_until_ms   BIGINT,
    sent_at          TIMESTAMPTZ,
    last_error       TEXT,
    -- Where the channel put it (a Slack channel and ts, a message id).
    external_id      TEXT,
    -- A fallback alert names the alert whose delivery failed.
    escalated_from   TEXT,
    PRIMARY KEY (tenant_id, alert_id),
    UNIQUE (tenant_id, dedup_key)
);
CREATE INDEX alerts_due ON alerts (tenant_id, state, due_ms);
CREATE INDEX alerts_by_subject ON alerts (tenant_id, kind, subject, created_at);

ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alerts USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON alerts TO dealwatch_app;

-- Background work (delivering the outbox, scheduled jobs) runs for every tenant, so it must
-- list them: a transaction that sets app.tenant_id to '*' may read the tenants table's rows,
-- and only that table, for that purpose. Every other table still shows one tenant at a time.
CREATE POLICY tenant_directory ON tenants FOR SELECT USING (current_setting('app.tenant_id', true) = '*');
