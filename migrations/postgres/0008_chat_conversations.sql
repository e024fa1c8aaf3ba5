-- Where the bot can write to someone unprompted on a chat platform: the conversation references
-- the Bot Framework requires for a proactive Teams message (its service URL, the conversation
-- id, the bot's and the person's ids), stored when the app is installed or first messaged.
-- `key` is `user:<Entra object id>` for a person's chat with the bot, `conversation:<id>` for a
-- channel or group chat.
CREATE TABLE chat_conversations (
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    platform        TEXT NOT NULL,
    key             TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    service_url     TEXT NOT NULL,
    -- The platform's organisation: the Entra tenant (Teams), the guild (Discord).
    org_id          TEXT NOT NULL,
    bot_id          TEXT,
    -- The person's id on the platform (Teams: 29:…), for a person's chat.
    user_id         TEXT,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, platform, key)
);

ALTER TABLE chat_conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE chat_conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chat_conversations
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON chat_conversations TO dealwatch_app;
