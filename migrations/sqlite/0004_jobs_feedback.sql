-- Scheduled jobs: one row per job, tenant and scheduled time, so a run is recorded once however
-- many schedulers see it due; a scheduler claims it under a lease (as the alert outbox does).
CREATE TABLE job_runs (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    job            TEXT NOT NULL,
    -- The scheduled time (epoch milliseconds).
    due_ms         INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_until_ms INTEGER,
    started_at     TEXT,
    finished_at    TEXT,
    -- What the run did (JSON), or why it failed.
    result         TEXT,
    last_error     TEXT,
    PRIMARY KEY (tenant_id, job, due_ms)
);
CREATE INDEX job_runs_claimable ON job_runs (tenant_id, state, due_ms);

-- Clicks on alerts: useful, not relevant, false alarm (with a reason), snooze. The same click
-- delivered twice (a chat platform's retry) is one row: dedup_key is unique.
CREATE TABLE alert_feedback (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    alert_id        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    -- Copied from the alert, so feedback is counted by kind and subject without a join.
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('useful', 'not_relevant', 'false_alarm', 'snooze')),
    reason          TEXT,
    -- Snoozes: until then (epoch milliseconds), and/or until the score moves from this one.
    snooze_until_ms INTEGER,
    snooze_score    INTEGER,
    created_at      TEXT NOT NULL,
    dedup_key       TEXT NOT NULL,
    UNIQUE (tenant_id, dedup_key)
);
CREATE INDEX alert_feedback_by_user ON alert_feedback (tenant_id, user_id, kind, subject);

-- Thresholds tuned from feedback, per tenant and alert kind: visible, bounded, and reversible by
-- an admin (who can also pin a value).
CREATE TABLE alert_tuning (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    kind       TEXT NOT NULL,
    threshold  INTEGER NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('feedback', 'admin')),
    reason     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);
