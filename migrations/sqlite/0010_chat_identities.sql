-- People's ids on chat platforms, one row per platform and id (was one column per platform on
-- users): a new platform needs no migration. An id names one person of the tenant.
CREATE TABLE chat_identities (
    tenant_id   TEXT NOT NULL,
    platform    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, platform, external_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX chat_identities_by_user ON chat_identities (tenant_id, user_id, platform);

-- The ids as they were, each platform's first holder of an id keeping it.
INSERT OR IGNORE INTO chat_identities (tenant_id, platform, external_id, user_id)
    SELECT tenant_id, 'slack', slack_user_id, user_id FROM users WHERE slack_user_id IS NOT NULL
    ORDER BY tenant_id, user_id;
INSERT OR IGNORE INTO chat_identities (tenant_id, platform, external_id, user_id)
    SELECT tenant_id, 'teams', teams_user_id, user_id FROM users WHERE teams_user_id IS NOT NULL
    ORDER BY tenant_id, user_id;
INSERT OR IGNORE INTO chat_identities (tenant_id, platform, external_id, user_id)
    SELECT tenant_id, 'discord', discord_user_id, user_id FROM users WHERE discord_user_id IS NOT NULL
    ORDER BY tenant_id, user_id;

ALTER TABLE users DROP COLUMN slack_user_id;
ALTER TABLE users DROP COLUMN teams_user_id;
ALTER TABLE users DROP COLUMN discord_user_id;
