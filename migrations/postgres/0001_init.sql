-- Dealwatch store, PostgreSQL dialect. Version numbers match migrations/sqlite. Every table
-- carries its tenant; row-level security (at the end) enforces the scoping in the database too.

CREATE TABLE tenants (
    tenant_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    -- The tenant's columns (engine::record::SchemaSpec, JSON), set by imports.
    schema_spec JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL
);

-- Current state of every deal.
CREATE TABLE deals (
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    deal_id         TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    owner           TEXT,
    created_date    DATE,
    closed_date     DATE,
    stage           TEXT,
    amount          DOUBLE PRECISION,
    outcome         TEXT NOT NULL CHECK (outcome IN ('won', 'lost', 'open')),
    -- Segment, extra feature and stage-entry values by name (JSON).
    attributes      JSONB NOT NULL DEFAULT '{}',
    -- The latest score (history in `scores`).
    risk_score      BIGINT,
    risk_category   TEXT,
    win_probability DOUBLE PRECISION,
    model_version   TEXT,
    scored_at       TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, deal_id)
);
CREATE INDEX deals_by_risk ON deals (tenant_id, outcome, risk_score DESC);
CREATE INDEX deals_by_owner ON deals (tenant_id, owner);

-- Changes of stage, amount and close date over time.
CREATE TABLE deal_history (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    deal_id    TEXT NOT NULL,
    field      TEXT NOT NULL CHECK (field IN ('stage', 'amount', 'closed_date', 'outcome')),
    old_value  TEXT,
    new_value  TEXT,
    changed_at TIMESTAMPTZ NOT NULL,
    import_id  TEXT
);
CREATE INDEX deal_history_by_deal ON deal_history (tenant_id, deal_id, id);

-- Score history, with the model that produced each score.
CREATE TABLE scores (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    deal_id         TEXT NOT NULL,
    scored_at       TIMESTAMPTZ NOT NULL,
    as_of           DATE,
    model_version   TEXT NOT NULL,
    risk_score      BIGINT NOT NULL,
    risk_category   TEXT NOT NULL,
    win_probability DOUBLE PRECISION NOT NULL,
    confidence      DOUBLE PRECISION NOT NULL,
    card            JSONB NOT NULL
);
CREATE INDEX scores_by_deal ON scores (tenant_id, deal_id, id);

-- Trained models: versions with status and metrics.
CREATE TABLE models (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    version    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('champion', 'challenger', 'archived')),
    trained_at TIMESTAMPTZ NOT NULL,
    as_of      DATE,
    n_train    BIGINT NOT NULL,
    metrics    JSONB,
    model      JSONB NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- People: CRM owner ↔ email ↔ chat ids, role, manager, time zone.
CREATE TABLE users (
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    user_id         TEXT NOT NULL,
    email           TEXT,
    name            TEXT NOT NULL DEFAULT '',
    crm_owner       TEXT,
    role            TEXT NOT NULL CHECK (role IN ('rep', 'manager', 'admin')),
    manager_id      TEXT,
    time_zone       TEXT NOT NULL DEFAULT 'UTC',
    slack_user_id   TEXT,
    teams_user_id   TEXT,
    discord_user_id TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE UNIQUE INDEX users_by_email ON users (tenant_id, email);
CREATE INDEX users_by_manager ON users (tenant_id, manager_id);

CREATE TABLE alert_settings (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    user_id    TEXT NOT NULL,
    settings   JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    details    JSONB,
    request_id TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (tenant_id, id);

-- POST requests with an Idempotency-Key: a retry gets the first response.
CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    user_id       TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   BIGINT,
    response_body JSONB,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id, idem_key)
);

CREATE TABLE imports (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    import_id        TEXT NOT NULL,
    source           TEXT NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    rows_read        BIGINT NOT NULL,
    rows_accepted    BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    inserted         BIGINT NOT NULL,
    updated          BIGINT NOT NULL,
    unchanged        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, import_id)
);

CREATE TABLE import_errors (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    import_id   TEXT NOT NULL,
    row_number  BIGINT NOT NULL,
    deal_id     TEXT,
    column_name TEXT NOT NULL,
    value       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX import_errors_by_import ON import_errors (tenant_id, import_id);

CREATE TABLE sync_watermarks (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    source     TEXT NOT NULL,
    watermark  TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, source)
);

-- Row-level security: a connection sees only the tenant named by the transaction-local setting
-- app.tenant_id (set by the service at the start of every transaction). FORCE applies the
-- policies to the tables' owner as well; only superusers bypass them, and the service must not
-- connect as one. The service's role is dealwatch_app (or a login role that is a member of it),
-- which does not own the tables.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dealwatch_app') THEN
        CREATE ROLE dealwatch_app NOLOGIN;
    END IF;
END
$$;

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'deals', 'deal_history', 'scores', 'models', 'users',
                             'alert_settings', 'audit_log', 'idempotency_keys', 'imports',
                             'import_errors', 'sync_watermarks']
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
