-- Scheduled jobs: one row per job, tenant and scheduled time, so a run is recorded once however
-- many schedulers see it due; a scheduler claims it under a lease (as the alert outbox does).
CREATE TABLE job_runs (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    job            TEXT NOT NULL,
    -- The scheduled time (epoch milliseconds).
    due_ms         BIGINT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts       BIGINT NOT NULL DEFAULT 0,
    lease_until_ms BIGINT,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    -- What the run did, or why it failed.
    result         JSONB,
    last_error     TEXT,
    PRIMARY KEY (tenant_id, job, due_ms)
);
CREATE INDEX job_runs_claimable ON job_runs (tenant_id, state, due_ms);

-- Clicks on alerts: useful, not relevant, false alarm (with a reason), snooze. The same click
-- delivered twice (a chat platform's retry) is one row: dedup_key is unique.
CREATE TABLE alert_feedback (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    alert_id        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    -- Copied from the alert, so feedback is counted by kind and subject without a join.
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('useful', 'not_relevant', 'false_alarm', 'snooze')),
    reason          TEXT,
    -- Snoozes: until then (epoch milliseconds), and/or until the score moves from this one.
    snooze_until_ms BIGINT,
    snooze_score    BIGINT,
    created_at      TIMESTAMPTZ NOT NULL,
    dedup_key       TEXT NOT NULL,
    UNIQUE (tenant_id, dedup_key)
);
CREATE INDEX alert_feedback_by_user ON alert_feedback (tenant_id, user_id, kind, subject);

-- Thresholds tuned from feedback, per tenant and alert kind: visible, bounded, and reversible by
-- an admin (who can also pin a value).
CREATE TABLE alert_tuning (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    kind       TEXT NOT NULL,
    threshold  BIGINT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('feedback', 'admin')),
    reason     TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['job_runs', 'alert_feedback', 'alert_tuning']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO dealwatch_app', t);
    END LOOP;
END
$$;
