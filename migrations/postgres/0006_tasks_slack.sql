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
    due_date   DATE,
    -- The CRM owner the task is for (the deal's owner).
    owner      TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- recorded (no CRM connected), queued (waiting for the CRM), written, failed.
    state      TEXT NOT NULL,
    crm_id     TEXT,
    error      TEXT,
    PRIMARY KEY (tenant_id, task_id),
    UNIQUE (tenant_id, task_key)
);
CREATE INDEX follow_up_tasks_deal ON follow_up_tasks (tenant_id, deal_id);

ALTER TABLE follow_up_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE follow_up_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON follow_up_tasks
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON follow_up_tasks TO dealwatch_app;

-- Slack workspaces installed through the OAuth flow: the workspace's tenant and its bot token,
-- encrypted (XChaCha20-Poly1305 under the deployment's key; never stored in clear). A request
-- from Slack names its workspace before its tenant is known, so the directory ('*') may read
-- the rows; a tenant's own transactions see and change only theirs.
CREATE TABLE slack_installations (
    team_id      TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    team_name    TEXT NOT NULL,
    bot_user_id  TEXT,
    scopes       TEXT NOT NULL,
    token_sealed TEXT NOT NULL,
    installed_by TEXT,
    installed_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE slack_installations ENABLE ROW LEVEL SECURITY;
ALTER TABLE slack_installations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON slack_installations
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY slack_directory ON slack_installations FOR SELECT
    USING (current_setting('app.tenant_id', true) = '*');
GRANT SELECT, INSERT, UPDATE, DELETE ON slack_installations TO dealwatch_app;
