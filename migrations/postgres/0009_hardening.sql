-- What the hardening of December needed.

-- The risk score a judgement was about (an alert's, or the deal's on the card clicked), so that
-- only judgements of critical-level scores tune the critical threshold.
ALTER TABLE alert_feedback ADD COLUMN score BIGINT;

-- Signed requests already taken (a Slack request's or the Salesforce webhook's signature) and
-- links used once (a Slack install link), kept until their window has passed: the same
-- signature inside its five minutes is a replay, and is refused. Not tenant data (digests and
-- times only): a request is checked before its tenant is known, so no row-level policy.
CREATE TABLE seen_requests (
    scope      TEXT NOT NULL,
    digest     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, digest)
);
CREATE INDEX seen_requests_expiry ON seen_requests (expires_at);
GRANT SELECT, INSERT, DELETE ON seen_requests TO dealwatch_app;

-- A user's API tokens issued before `not_before` are refused (`dealwatch token revoke`).
CREATE TABLE token_revocations (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    user_id    TEXT NOT NULL,
    not_before TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

ALTER TABLE token_revocations ENABLE ROW LEVEL SECURITY;
ALTER TABLE token_revocations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON token_revocations
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON token_revocations TO dealwatch_app;

-- Idempotency keys expire after a day: the old ones are removed by creation time.
CREATE INDEX idempotency_keys_created ON idempotency_keys (tenant_id, created_at);
