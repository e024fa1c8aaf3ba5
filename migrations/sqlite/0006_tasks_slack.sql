-- Follow-up tasks people create from chat ("Create follow-up task" on a risk card or alert):
-- recorded here, and queued for the CRM (a Salesforce Task on the Opportunity) when one is
-- connected. `task_key` is the click the task came from, so the same click delivered twice
-- creates one task.
CREATE TABLE follow_up_tasks (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    task_id    TEXT NOT NULL,
    task_key   TEXT NOT NULL,
    deal_id    TEXT NOT NULL,
    subject    TEXT NOT NULL,
    due_date   TEXT,
    -- The CRM owner the task is for (the deal's owner).
    owner      TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- recorded (no CRM connected), queued (waiting for the CRM), written, failed.
    state      TEXT NOT NULL,
    crm_id     TEXT,
    error      TEXT,
    PRIMARY KEY (tenant_id, task_id),
    UNIQUE (tenant_id, task_key)
);
CREATE INDEX follow_up_tasks_deal ON follow_up_tasks (tenant_id, deal_id);

-- Slack workspaces installed through the OAuth flow: the workspace's tenant and its bot token,
-- encrypted (XChaCha20-Poly1305 under the deployment's key; never stored in clear).
CREATE TABLE slack_installations (
    team_id      TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    team_name    TEXT NOT NULL,
    bot_user_id  TEXT,
    scopes       TEXT NOT NULL,
    token_sealed TEXT NOT NULL,
    installed_by TEXT,
    installed_at TEXT NOT NULL
);
