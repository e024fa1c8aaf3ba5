-- What the hardening of December needed.

-- The risk score a judgement was about (an alert's, or the deal's on the card clicked), so that
-- only judgements of critical-level scores tune the critical threshold.
ALTER TABLE alert_feedback ADD COLUMN score INTEGER;

-- Signed requests already taken (a Slack request's or the Salesforce webhook's signature) and
-- links used once (a Slack install link), kept until their window has passed: the same
-- signature inside its five minutes is a replay, and is refused. Not tenant data: a request is
-- checked before its tenant is known.
CREATE TABLE seen_requests (
    scope      TEXT NOT NULL,
    digest     TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (scope, digest)
);
CREATE INDEX seen_requests_expiry ON seen_requests (expires_at);

-- A user's API tokens issued before `not_before` are refused (`dealwatch token revoke`).
CREATE TABLE token_revocations (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    user_id    TEXT NOT NULL,
    not_before TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- Idempotency keys expire after a day: the old ones are removed by creation time.
CREATE INDEX idempotency_keys_created ON idempotency_keys (tenant_id, created_at);
