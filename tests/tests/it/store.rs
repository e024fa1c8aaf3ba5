//! The store conformance suite: every test runs against SQLite and PostgreSQL.

use std::collections::BTreeMap;

use bot::store::{
    AuditEntry, HighRiskQuery, IdempotencyState, ImportBatch, ModelInfo, ModelStatus, Role, ScoreUpdate, SortBy,
    TenantId, User,
};
use chrono::{TimeZone, Utc};
use engine::domain::{Outcome, RiskCategory};
use engine::record::{DealRecord, SchemaSpec};
use tests::each_store;

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).expect("tenant id")
}

fn deal(id: &str, stage: &str, amount: f64, outcome: Outcome) -> DealRecord {
    DealRecord {
        id: id.to_owned(),
        name: format!("{id} Corp"),
        owner: Some("rep_1".into()),
        created: chrono::NaiveDate::from_ymd_opt(2024, 1, 2),
        closed: None,
        stage: Some(stage.to_owned()),
        amount: Some(amount),
        outcome,
        segments: BTreeMap::from([("industry".to_owned(), "SaaS".to_owned())]),
        numeric: BTreeMap::from([("contacts".to_owned(), 3.5)]),
        stage_entered: BTreeMap::new(),
    }
}

fn batch(id: &str, records: Vec<DealRecord>) -> ImportBatch {
    ImportBatch {
        import_id: id.to_owned(),
        source: "test.csv".into(),
        at: Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).single().expect("time"),
        spec: SchemaSpec {
            segments: vec!["industry".into()],
            numeric: vec!["contacts".into()],
            ..SchemaSpec::default()
        },
        records,
        rejected: Vec::new(),
        rows_read: 0,
    }
}

#[tokio::test]
async fn imports_upsert_by_id_are_idempotent_and_record_history() {
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let t = tenant("acme");
        let first = vec![deal("D1", "Demo", 1000.0, Outcome::Open), deal("D2", "Qualified", 500.0, Outcome::Open)];
        let out = store.import(&t, &batch("i1", first.clone())).await.expect("import");
        assert_eq!((out.inserted, out.updated, out.unchanged, out.history), (2, 0, 0, 0), "{b}");
        // The same file again changes nothing.
        let again = store.import(&t, &batch("i2", first.clone())).await.expect("import");
        assert_eq!((again.inserted, again.updated, again.unchanged, again.history), (0, 0, 2, 0), "{b}");
        // A stage, amount and close change is recorded field by field.
        let mut moved = first[0].clone();
        moved.stage = Some("Proposal".into());
        moved.amount = Some(1200.0);
        moved.closed = chrono::NaiveDate::from_ymd_opt(2024, 5, 30);
        moved.outcome = Outcome::Won;
        let changed = store.import(&t, &batch("i3", vec![moved.clone(), first[1].clone()])).await.expect("import");
        assert_eq!((changed.updated, changed.unchanged, changed.history), (1, 1, 4), "{b}");
        let history = store.deal_history(&t, "D1").await.expect("history");
        let fields: Vec<&str> = history.iter().map(|h| h.field.as_str()).collect();
        assert_eq!(fields, ["stage", "amount", "closed_date", "outcome"], "{b}");
        assert_eq!(
            (history[0].old_value.as_deref(), history[0].new_value.as_deref()),
            (Some("Demo"), Some("Proposal"))
        );
        assert_eq!(history[0].import_id.as_deref(), Some("i3"));
        // What is stored reads back exactly.
        let stored = store.deal(&t, "D1").await.expect("read").expect("D1 exists");
        assert_eq!(stored.record, moved, "{b}");
        assert_eq!(store.deals(&t).await.expect("deals").len(), 2);
        assert!(store.deal(&t, "D404").await.expect("read").is_none());
        let info = store.tenant(&t).await.expect("tenant").expect("created by the import");
        assert_eq!(info.schema.segments, ["industry"], "{b}");
    }
}

#[tokio::test]
async fn one_tenant_never_sees_another_s_data() {
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let (a, other) = (tenant("tenant-a"), tenant("tenant-b"));
        store.import(&a, &batch("a1", vec![deal("D1", "Demo", 100.0, Outcome::Open)])).await.expect("import a");
        store
            .import(&other, &batch("b1", vec![deal("D1", "Negotiation", 900.0, Outcome::Open)]))
            .await
            .expect("import b");
        // Same deal id, different tenants: each sees its own.
        assert_eq!(store.deal(&a, "D1").await.expect("read").expect("a").record.amount, Some(100.0), "{b}");
        assert_eq!(store.deal(&other, "D1").await.expect("read").expect("b").record.amount, Some(900.0), "{b}");
        assert_eq!(store.deals(&a).await.expect("deals").len(), 1);
        store
            .audit(
                &a,
                &[AuditEntry {
                    at: Utc::now(),
                    actor: "u".into(),
                    action: "read".into(),
                    target: None,
                    details: None,
                    request_id: None,
                }],
            )
            .await
            .expect("audit");
        assert!(store.audit_log(&other, 10).await.expect("audit log").is_empty(), "{b}");
    }
}

#[tokio::test]
async fn postgres_row_level_security_hides_other_tenants_even_without_a_where_clause() {
    let Some(ts) = tests::pg_store().await else { return };
    let store = &ts.store;
    store.import(&tenant("alpha"), &batch("a1", vec![deal("A1", "Demo", 1.0, Outcome::Open)])).await.expect("import");
    store.import(&tenant("beta"), &batch("b1", vec![deal("B1", "Demo", 2.0, Outcome::Open)])).await.expect("import");
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&ts.url).await.expect("connect as the service role");
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    // No tenant set: nothing is visible.
    assert_eq!(count("SELECT COUNT(*) FROM deals").fetch_one(&mut conn).await.expect("count"), 0);
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("SELECT set_config('app.tenant_id', 'alpha', true)").execute(&mut *tx).await.expect("set tenant");
    let ids: Vec<String> = sqlx::query_scalar("SELECT deal_id FROM deals").fetch_all(&mut *tx).await.expect("select");
    assert_eq!(ids, ["A1"]);
    // Writing another tenant's row is refused by the policy.
    let err =
        sqlx::query("INSERT INTO deals (tenant_id, deal_id, outcome, updated_at) VALUES ('beta', 'X', 'open', now())")
            .execute(&mut *tx)
            .await
            .expect_err("row-level security refuses it");
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);
    // The service role owns no table.
    let owned: i64 = count("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user")
        .fetch_one(&mut conn)
        .await
        .expect("owner check");
    assert_eq!(owned, 0);
}

#[tokio::test]
async fn scores_are_kept_and_risky_deals_are_filtered_sorted_and_paged() {
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let t = tenant("acme");
        let mut records = Vec::new();
        for i in 0..30 {
            let mut d = deal(&format!("D{i:02}"), "Demo", 1000.0 + f64::from(i), Outcome::Open);
            d.owner = Some(if i % 2 == 0 { "rep_1" } else { "rep_2" }.into());
            records.push(d);
        }
        records.push(deal("WON", "Closed Won", 5000.0, Outcome::Won));
        store.import(&t, &batch("i1", records)).await.expect("import");
        let at = Utc.with_ymd_and_hms(2024, 6, 2, 3, 0, 0).single().expect("time");
        let updates: Vec<ScoreUpdate> = (0..30)
            .map(|i| {
                let score = (40 + i * 2) as u8;
                ScoreUpdate {
                    deal_id: format!("D{i:02}"),
                    risk_score: score,
                    risk_category: RiskCategory::from_score(score),
                    win_probability: 1.0 - f64::from(score) / 100.0,
                    confidence: 0.9,
                    model_version: "additive-1".into(),
                    card: serde_json::json!({ "risk_score": score }),
                }
            })
            .collect();
        assert_eq!(
            store.save_scores(&t, at, chrono::NaiveDate::from_ymd_opt(2024, 6, 1), &updates).await.expect("save"),
            30
        );
        let stored = store.deal(&t, "D29").await.expect("read").expect("deal");
        let score = stored.score.expect("scored");
        assert_eq!((score.risk_score, score.risk_category, score.scored_at), (98, RiskCategory::Critical, at), "{b}");

        let query = HighRiskQuery {
            categories: vec![RiskCategory::High, RiskCategory::Critical],
            owners: None,
            sort_by: SortBy::RiskScore,
            descending: true,
            limit: 5,
            offset: 0,
        };
        let page = store.high_risk(&t, &query).await.expect("high risk");
        // Scores 52..98 are high or critical: deals D06..D29, 24 of them.
        assert_eq!(page.total_count, 24, "{b}");
        let ids: Vec<&str> = page.deals.iter().map(|d| d.deal_id.as_str()).collect();
        assert_eq!(ids, ["D29", "D28", "D27", "D26", "D25"], "{b}");
        assert_eq!(page.deals_by_category.get("critical"), Some(&12));
        assert_eq!(page.deals_by_category.get("high"), Some(&12));
        let expected_revenue: f64 = (6..30).map(|i| 1000.0 + f64::from(i)).sum();
        assert!((page.total_at_risk_revenue - expected_revenue).abs() < 1e-6, "{b}");
        let second = store.high_risk(&t, &HighRiskQuery { offset: 5, ..query.clone() }).await.expect("page 2");
        assert_eq!(second.deals[0].deal_id, "D24");
        let mine = store
            .high_risk(&t, &HighRiskQuery { owners: Some(vec!["rep_2".into()]), ..query.clone() })
            .await
            .expect("owner filter");
        assert!(mine.deals.iter().all(|d| d.rep_id.as_deref() == Some("rep_2")), "{b}");
        assert_eq!(mine.total_count, 12);
        let nobody =
            store.high_risk(&t, &HighRiskQuery { owners: Some(vec![]), ..query.clone() }).await.expect("empty");
        assert_eq!(nobody.total_count, 0);
        let by_amount = store
            .high_risk(&t, &HighRiskQuery { sort_by: SortBy::Amount, descending: false, ..query })
            .await
            .expect("by amount");
        assert_eq!(by_amount.deals[0].deal_id, "D06", "{b}");
    }
}

#[tokio::test]
async fn models_have_one_champion_and_keep_their_metrics() {
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let t = tenant("acme");
        store.ensure_tenant(&t, "Acme").await.expect("tenant");
        let info = |version: &str, minute: u32| ModelInfo {
            version: version.into(),
            kind: "additive".into(),
            status: ModelStatus::Challenger,
            trained_at: Utc.with_ymd_and_hms(2024, 6, 1, 0, minute, 0).single().expect("time"),
            as_of: chrono::NaiveDate::from_ymd_opt(2024, 5, 31),
            n_train: 1234,
            metrics: Some(serde_json::json!({ "roc_auc": 0.81 })),
        };
        store.save_model(&t, &info("v1", 1), &serde_json::json!({ "v": 1 })).await.expect("save v1");
        store.save_model(&t, &info("v2", 2), &serde_json::json!({ "v": 2 })).await.expect("save v2");
        assert!(store.champion(&t).await.expect("champion").is_none(), "{b}");
        store.promote_model(&t, "v1").await.expect("promote v1");
        store.promote_model(&t, "v2").await.expect("promote v2");
        let (champion, body) = store.champion(&t).await.expect("champion").expect("one");
        assert_eq!((champion.version.as_str(), body), ("v2", serde_json::json!({ "v": 2 })), "{b}");
        let statuses: Vec<(String, ModelStatus)> =
            store.models(&t).await.expect("models").into_iter().map(|m| (m.version, m.status)).collect();
        assert_eq!(statuses, [("v2".into(), ModelStatus::Champion), ("v1".into(), ModelStatus::Archived)], "{b}");
        assert!(store.promote_model(&t, "v9").await.is_err());
    }
}

#[tokio::test]
async fn users_settings_audit_and_watermarks_round_trip() {
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let t = tenant("acme");
        store.ensure_tenant(&t, "Acme").await.expect("tenant");
        let maria = User {
            user_id: "u-maria".into(),
            email: Some("maria@acme.test".into()),
            name: "Maria".into(),
            crm_owner: Some("rep_15".into()),
            role: Role::Rep,
            manager_id: Some("u-lee".into()),
            time_zone: "Europe/Berlin".into(),
            chat_ids: [("slack".to_owned(), "U123".to_owned())].into(),
        };
        store.upsert_user(&t, &maria).await.expect("user");
        store.upsert_user(&t, &User { role: Role::Manager, ..maria.clone() }).await.expect("update");
        assert_eq!(store.user(&t, "u-maria").await.expect("read").expect("user").role, Role::Manager, "{b}");
        let settings = serde_json::json!({ "quiet_hours": { "start": "20:00", "end": "08:00" } });
        store.save_alert_settings(&t, "u-maria", &settings, Utc::now()).await.expect("settings");
        assert_eq!(store.alert_settings(&t, "u-maria").await.expect("read"), Some(settings));
        assert_eq!(store.watermark(&t, "salesforce").await.expect("read"), None);
        store.set_watermark(&t, "salesforce", "2024-06-01T00:00:00Z", Utc::now()).await.expect("set");
        store.set_watermark(&t, "salesforce", "2024-06-02T00:00:00Z", Utc::now()).await.expect("set");
        assert_eq!(store.watermark(&t, "salesforce").await.expect("read").as_deref(), Some("2024-06-02T00:00:00Z"));
        for action in ["first", "second"] {
            let entry = AuditEntry {
                at: Utc::now(),
                actor: "u-maria".into(),
                action: action.into(),
                target: Some("D1".into()),
                details: Some(serde_json::json!({ "why": action })),
                request_id: Some("req-1".into()),
            };
            store.audit(&t, std::slice::from_ref(&entry)).await.expect("audit");
        }
        let log = store.audit_log(&t, 10).await.expect("log");
        assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["second", "first"], "{b}");
    }
}

#[tokio::test]
async fn a_chat_id_names_one_person_and_moves_to_whoever_is_linked_to_it_last() {
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let (acme, beta) = (tenant("acme"), tenant("beta"));
        for t in [&acme, &beta] {
            store.ensure_tenant(t, t.as_str()).await.expect("tenant");
        }
        let mut maria = User::named("maria", "Maria", Role::Rep);
        maria.set_chat_id("slack", "U1");
        maria.set_chat_id("mattermost", "mm-maria");
        store.upsert_user(&acme, &maria).await.expect("maria");
        // The same Slack id in another tenant is another person.
        store.upsert_user(&beta, &maria).await.expect("beta's maria");
        let mut omar = User::named("omar", "Omar", Role::Rep);
        omar.set_chat_id("slack", "U1");
        store.upsert_user(&acme, &omar).await.expect("omar");
        let ids = |users: Vec<User>| -> Vec<(String, BTreeMap<String, String>)> {
            users.into_iter().map(|u| (u.user_id, u.chat_ids)).collect()
        };
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(
            ids(store.users(&acme).await.expect("users")),
            [("maria".to_owned(), map(&[("mattermost", "mm-maria")])), ("omar".to_owned(), map(&[("slack", "U1")]))],
            "{b}: U1 is Omar's now; a platform the store has never heard of needs no migration"
        );
        assert_eq!(
            ids(store.users(&beta).await.expect("users")),
            [("maria".to_owned(), map(&[("mattermost", "mm-maria"), ("slack", "U1")]))],
            "{b}: beta untouched"
        );
        // Saving a person without an id removes it.
        omar.chat_ids.clear();
        store.upsert_user(&acme, &omar).await.expect("omar unlinked");
        assert!(store.user(&acme, "omar").await.expect("read").expect("omar").chat_ids.is_empty(), "{b}");
    }
}

#[tokio::test]
async fn upgrading_a_database_keeps_every_chat_id_people_had_in_columns() {
    use sqlx::migrate::Migrator;
    for db in tests::each_empty_database().await {
        let b = db.backend;
        // The schema as it was before chat identities had a table of their own (migration 9).
        let migrator = Migrator::new(tests::repo_root().join("migrations").join(b)).await.expect("migrations");
        let rows = "INSERT INTO tenants (tenant_id, name, created_at) VALUES \
                        ('acme', 'Acme', '2026-11-01T00:00:00Z'), ('beta', 'Beta', '2026-11-01T00:00:00Z'); \
                    INSERT INTO users (tenant_id, user_id, name, role, slack_user_id, teams_user_id, discord_user_id, created_at) VALUES \
                        ('acme', 'maria', 'Maria', 'rep', 'U1', 'aad-maria', '4242', '2026-11-01T00:00:00Z'), \
                        ('acme', 'omar', 'Omar', 'rep', 'U1', NULL, NULL, '2026-11-01T00:00:00Z'), \
                        ('acme', 'lee', 'Lee', 'manager', NULL, 'aad-lee', NULL, '2026-11-01T00:00:00Z'), \
                        ('beta', 'maria', 'Maria', 'admin', 'U1', NULL, NULL, '2026-11-01T00:00:00Z')";
        if b == "sqlite" {
            let options = db.url.parse::<sqlx::sqlite::SqliteConnectOptions>().expect("url").create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.expect("sqlite");
            migrator.run_to(9, &pool).await.expect("migrate to 9");
            sqlx::raw_sql(rows).execute(&pool).await.expect("people with chat ids in columns");
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&db.migration_url).await.expect("postgres");
            migrator.run_to(9, &pool).await.expect("migrate to 9");
            sqlx::raw_sql(rows).execute(&pool).await.expect("people with chat ids in columns");
            pool.close().await;
        }
        // Opening runs the rest.
        let ts = db.open().await;
        let ids = |users: Vec<User>| -> Vec<(String, Vec<(String, String)>)> {
            users.into_iter().map(|u| (u.user_id, u.chat_ids.into_iter().collect())).collect()
        };
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(
            ids(ts.store.users(&tenant("acme")).await.expect("users")),
            [
                ("lee".to_owned(), pairs(&[("teams", "aad-lee")])),
                ("maria".to_owned(), pairs(&[("discord", "4242"), ("slack", "U1"), ("teams", "aad-maria")])),
                // U1 was Maria's and Omar's: lookups found the first by user id, Maria, and still do.
                ("omar".to_owned(), pairs(&[])),
            ],
            "{b}"
        );
        assert_eq!(
            ids(ts.store.users(&tenant("beta")).await.expect("users")),
            [("maria".to_owned(), pairs(&[("slack", "U1")]))],
            "{b}"
        );
    }
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_mismatches_forget_failures_and_lapse() {
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let t = tenant("acme");
        store.ensure_tenant(&t, "Acme").await.expect("tenant");
        let now = Utc::now();
        let lapse = chrono::Duration::minutes(10);
        let begin = |user: &'static str, hash: &'static str, at: chrono::DateTime<Utc>| {
            let t = t.clone();
            async move { store.idempotency_begin(&t, user, "k1", hash, at, lapse).await.expect("begin") }
        };
        assert_eq!(begin("u1", "h1", now).await, IdempotencyState::New, "{b}");
        assert_eq!(begin("u1", "h1", now).await, IdempotencyState::InProgress);
        store.idempotency_finish(&t, "u1", "k1", 200, &serde_json::json!({ "ok": true })).await.expect("finish");
        let replay = begin("u1", "h1", now).await;
        assert_eq!(replay, IdempotencyState::Done { status: 200, body: serde_json::json!({ "ok": true }) }, "{b}");
        assert_eq!(begin("u1", "other", now).await, IdempotencyState::Mismatch);
        // Keys are per user: another user's same key is new.
        assert_eq!(begin("u2", "h1", now).await, IdempotencyState::New);
        store.idempotency_abandon(&t, "u2", "k1").await.expect("abandon");
        assert_eq!(begin("u2", "h1", now).await, IdempotencyState::New, "{b}");
        // A key left in progress by a request that died is taken over once its lapse has passed.
        assert_eq!(begin("u2", "h1", now + chrono::Duration::minutes(9)).await, IdempotencyState::InProgress, "{b}");
        assert_eq!(begin("u2", "h1", now + chrono::Duration::minutes(11)).await, IdempotencyState::New, "{b}");
        // A day on, a finished key has expired: the same key is a new request.
        let later = now + bot::store::IDEMPOTENCY_KEPT + chrono::Duration::minutes(1);
        assert_eq!(begin("u1", "other", later).await, IdempotencyState::New, "{b}");
    }
}

#[tokio::test]
async fn rejected_rows_are_kept_with_their_reasons() {
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let t = tenant("acme");
        let mut with_errors = batch("i1", vec![deal("D1", "Demo", 10.0, Outcome::Open)]);
        with_errors.rows_read = 2;
        with_errors.rejected.push(engine::ingest::Problem {
            row: 2,
            deal_id: Some("D2".into()),
            column: "amount".into(),
            value: "-5".into(),
            kind: engine::ingest::ProblemKind::NonPositiveAmount,
            severity: engine::ingest::Severity::Error,
            reason: "amount must be greater than 0".into(),
        });
        store.import(&t, &with_errors).await.expect("import");
        let errors = store.import_errors(&t, "i1").await.expect("errors");
        assert_eq!(errors.len(), 1, "{b}");
        assert_eq!(
            (errors[0].row, errors[0].kind.as_str(), errors[0].value.as_str()),
            (2, "non_positive_amount", "-5")
        );
    }
}

#[tokio::test]
async fn chat_conversations_are_kept_per_tenant_and_platform_newest_first() {
    use bot::store::Conversation;
    for ts in each_store().await {
        let (store, b) = (&ts.store, ts.store.backend());
        let (a, other) = (tenant("tenant-a"), tenant("tenant-b"));
        for t in [&a, &other] {
            store.import(t, &batch("c1", vec![deal("D1", "Demo", 1.0, Outcome::Open)])).await.expect("import");
        }
        let at = |minute: u32| Utc.with_ymd_and_hms(2026, 12, 4, 9, minute, 0).single().expect("time");
        let row = |key: &str, conversation: &str, minute: u32| Conversation {
            platform: "teams".into(),
            key: key.into(),
            conversation_id: conversation.into(),
            service_url: "https://smba.trafficmanager.net/emea/".into(),
            org_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            bot_id: Some("28:app".into()),
            user_id: key.starts_with("user:").then(|| "29:maria".to_owned()),
            updated_at: at(minute),
        };
        store.save_conversation(&a, &row("user:aad-maria", "", 1)).await.expect("save");
        store
            .save_conversation(&a, &row("conversation:19:deals@thread.tacv2", "19:deals@thread.tacv2", 2))
            .await
            .expect("save");
        // The personal chat, opened later, replaces the row of the person.
        store.save_conversation(&a, &row("user:aad-maria", "a:maria", 3)).await.expect("replace");
        let mut discord = row("user:1200", "1300", 4);
        discord.platform = "discord".into();
        store.save_conversation(&a, &discord).await.expect("another platform");
        let teams = store.conversations(&a, "teams").await.expect("read");
        let keys: Vec<(&str, &str)> = teams.iter().map(|c| (c.key.as_str(), c.conversation_id.as_str())).collect();
        assert_eq!(
            keys,
            [("user:aad-maria", "a:maria"), ("conversation:19:deals@thread.tacv2", "19:deals@thread.tacv2")],
            "{b}"
        );
        assert_eq!(teams[0], row("user:aad-maria", "a:maria", 3), "{b}: every field round-trips");
        assert_eq!(store.conversations(&a, "discord").await.expect("read").len(), 1, "{b}");
        assert!(store.conversations(&other, "teams").await.expect("read").is_empty(), "{b}: another tenant sees none");
        let one = store.conversation(&a, "teams", "user:aad-maria").await.expect("read");
        assert_eq!(one.map(|c| c.conversation_id), Some("a:maria".to_owned()), "{b}");
        assert_eq!(store.conversation(&a, "discord", "user:aad-maria").await.expect("read"), None, "{b}");
        assert_eq!(store.conversation(&other, "teams", "user:aad-maria").await.expect("read"), None, "{b}");
    }
}
