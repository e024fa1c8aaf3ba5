-- Settings that belong to a tenant rather than to one user, by name: `alert_routes` (the shared
-- channels each alert kind also goes to, such as a leadership Slack channel). The service
-- validates a value before it stores it; who changed it last is kept with it.
CREATE TABLE tenant_settings (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
