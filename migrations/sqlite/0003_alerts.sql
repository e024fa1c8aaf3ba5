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
    -- The facts the message templates render (JSON).
    payload          TEXT NOT NULL,
    -- For deal alerts: the score alerted on (material-change rule).
    score            INTEGER,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'escalated', 'suppressed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    -- Not before (quiet hours, backoff).
    due_ms           INTEGER NOT NULL,
    -- A sender's claim on a row in 'sending' runs until then; after it another may take over.
    lease_until_ms   INTEGER,
    sent_at          TEXT,
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
