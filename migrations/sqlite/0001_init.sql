-- Dealwatch store, SQLite dialect (the embedded default). Version numbers match
-- migrations/postgres; every table carries its tenant and every query is scoped by it.

CREATE TABLE tenants (
    tenant_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    -- The tenant's columns (engine::record::SchemaSpec, JSON), set by imports.
    schema_spec TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);

-- Current state of every deal.
CREATE TABLE deals (
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    deal_id         TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    owner           TEXT,
    created_date    TEXT,
    closed_date     TEXT,
    stage           TEXT,
    amount          REAL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('won', 'lost', 'open')),
    -- Segment, extra feature and stage-entry values by name (JSON).
    attributes      TEXT NOT NULL DEFAULT '{}',
    -- The latest score (history in `scores`).
    risk_score      INTEGER,
    risk_category   TEXT,
    win_probability REAL,
    model_version   TEXT,
    scored_at       TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, deal_id)
);
CREATE INDEX deals_by_risk ON deals (tenant_id, outcome, risk_score DESC);
CREATE INDEX deals_by_owner ON deals (tenant_id, owner);

-- Changes of stage, amount and close date over time.
CREATE TABLE deal_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    deal_id    TEXT NOT NULL,
    field      TEXT NOT NULL CHECK (field IN ('stage', 'amount', 'closed_date', 'outcome')),
    old_value  TEXT,
    new_value  TEXT,
    changed_at TEXT NOT NULL,
    import_id  TEXT
);
CREATE INDEX deal_history_by_deal ON deal_history (tenant_id, deal_id, id);

-- Score history, with the model that produced each score.
CREATE TABLE scores (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    deal_id         TEXT NOT NULL,
    scored_at       TEXT NOT NULL,
    as_of           TEXT,
    model_version   TEXT NOT NULL,
    risk_score      INTEGER NOT NULL,
    risk_category   TEXT NOT NULL,
    win_probability REAL NOT NULL,
    confidence      REAL NOT NULL,
    card            TEXT NOT NULL
);
CREATE INDEX scores_by_deal ON scores (tenant_id, deal_id, id);

-- Trained models: versions with status and metrics.
CREATE TABLE models (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    version    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('champion', 'challenger', 'archived')),
    trained_at TEXT NOT NULL,
    as_of      TEXT,
    n_train    INTEGER NOT NULL,
    metrics    TEXT,
    model      TEXT NOT NULL,
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
    created_at      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE UNIQUE INDEX users_by_email ON users (tenant_id, email);
CREATE INDEX users_by_manager ON users (tenant_id, manager_id);

CREATE TABLE alert_settings (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    user_id    TEXT NOT NULL,
    settings   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    details    TEXT,
    request_id TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (tenant_id, id);

-- POST requests with an Idempotency-Key: a retry gets the first response.
CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    user_id       TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   INTEGER,
    response_body TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, idem_key)
);

CREATE TABLE imports (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    import_id        TEXT NOT NULL,
    source           TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    rows_read        INTEGER NOT NULL,
    rows_accepted    INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    inserted         INTEGER NOT NULL,
    updated          INTEGER NOT NULL,
    unchanged        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, import_id)
);

CREATE TABLE import_errors (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    import_id   TEXT NOT NULL,
    row_number  INTEGER NOT NULL,
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
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, source)
);
