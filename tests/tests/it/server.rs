//! The HTTP service, end to end: a real server on 127.0.0.1 over SQLite and over PostgreSQL,
//! driven over HTTP. Every test runs on both back-ends.

use bot::store::Role;
use serde_json::{Value, json};
use tests::{TestServer, each_store, seed_tenant, token};

/// A server over `store` with tenant `acme` seeded (2,000 generated deals, users, a champion
/// model, stored scores), as of today so the API's "today" sees open deals.
async fn server(
    store: tests::TestStore,
    configure: impl FnOnce(&mut bot::config::Settings),
) -> (TestServer, engine::dataset::Dataset) {
    let today = chrono::Utc::now().date_naive();
    let dataset = seed_tenant(store.store.as_ref(), "acme", 2_000, 4, today).await;
    (TestServer::start(store, configure).await, dataset)
}

fn admin() -> String {
    token("acme", "admin", Role::Admin, 3600)
}

/// An open deal of `owner` (and its id).
fn open_deal_of(dataset: &engine::dataset::Dataset, owner: &str) -> String {
    tests::open_deal(dataset, owner).id.to_string()
}

#[tokio::test]
async fn health_readiness_metrics_and_the_committed_openapi_document() {
    for store in each_store().await {
        let backend = store.store.backend();
        let (server, _) = server(store, |_| {}).await;
        let http = &server.http;
        assert_eq!(http.get(server.url("/healthz")).send().await.expect("healthz").status(), 200);
        let (status, ready) = tests::json_of(http.get(server.url("/readyz")).send().await.expect("readyz")).await;
        assert_eq!((status, &ready["database"], &ready["backend"]), (200, &json!("ok"), &json!(backend)));
        // Request ids are ours: a client's is replaced by one we make, which comes back.
        let response = http.get(server.url("/healthz")).header("x-request-id", "req-test-1").send().await.expect("id");
        let given = response.headers()["x-request-id"].to_str().expect("text").to_owned();
        assert!(given != "req-test-1" && uuid::Uuid::parse_str(&given).is_ok(), "a request id of ours: {given}");
        let generated = http.get(server.url("/healthz")).send().await.expect("id");
        assert!(generated.headers().get("x-request-id").is_some(), "and generated when absent");
        server.get("/v1/pipeline/metrics", &admin()).await;
        let metrics = http.get(server.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        assert!(metrics.contains("http_requests_total"), "{metrics}");
        assert!(metrics.contains("http_request_duration_seconds_bucket"), "latency histogram");
        let served = http.get(server.url("/openapi.json")).send().await.expect("openapi").text().await.expect("text");
        let path = tests::repo_root().join("bot/openapi.json");
        if std::env::var("DEALWATCH_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
            std::fs::write(&path, format!("{served}\n")).expect("write openapi.json");
        }
        let committed = std::fs::read_to_string(&path).expect("bot/openapi.json is committed");
        assert_eq!(
            committed.trim_end(),
            served,
            "bot/openapi.json is out of date: regenerate it with DEALWATCH_UPDATE_OPENAPI=1 cargo test --workspace openapi"
        );
        let doc: Value = serde_json::from_str(&served).expect("JSON");
        for p in [
            "/v1/deals/score",
            "/v1/deals/high-risk",
            "/v1/deals/{deal_id}",
            "/v1/pipeline/metrics",
            "/v1/alerts/configure",
            "/v1/models/performance",
            "/v1/models/train",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} documented");
        }
    }
}

#[tokio::test]
async fn scoring_by_id_and_by_payload_and_every_kind_of_bad_input() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, dataset) = server(store, |_| {}).await;
        let t = admin();
        let open = open_deal_of(&dataset, "rep_1");
        let (status, card) = server.post("/v1/deals/score", &t, &json!({ "deal_id": open })).await;
        assert_eq!(status, 200, "{b}: {card}");
        let risk = card["risk_score"].as_u64().expect("risk score");
        assert!(risk <= 100 && card["risk_category"].is_string() && card["model_version"].is_string());
        assert!(card["risk_factors"].is_array() && card["recommendations"].is_array() && card["scored_at"].is_string());
        let total = card["base_risk"].as_f64().unwrap_or(0.0)
            + card["contributions"]
                .as_array()
                .expect("contributions")
                .iter()
                .filter_map(|c| c["impact"].as_f64())
                .sum::<f64>();
        assert!((total - 100.0 * (1.0 - card["win_probability"].as_f64().unwrap_or(0.0))).abs() < 0.1, "{b}: exact");

        // A payload in seed 002's names: scored as sent, unknown fields reported.
        let payload = json!({
            "deal_id": "NEW-1", "deal_amount": 45000, "industry": "EdTech", "lead_source": "Partner",
            "region": "APAC", "product_type": "Enterprise", "created_date": (chrono::Utc::now().date_naive() - chrono::Duration::days(40)).to_string(),
            "deal_stage": "Proposal", "sales_cycle_days": 28
        });
        let (status, card) = server.post("/v1/deals/score", &t, &payload).await;
        assert_eq!(status, 200, "{b}: {card}");
        assert_eq!(card["deal_id"], "NEW-1");
        assert_eq!(card["ignored_fields"], json!(["sales_cycle_days"]));
        assert_eq!(card["stage"], "Proposal");

        // Bad input: each gets its status and names the field, and nothing changes.
        let checks: Vec<(Value, u16, Option<&str>)> = vec![
            (json!({ "deal_id": "D999999" }), 404, None),
            (json!({ "deal_amount": 5 }), 422, Some("deal_id")),
            (json!({ "deal_id": "  " }), 422, Some("deal_id")),
            (json!({ "deal_id": "X", "amount": -5 }), 422, Some("amount")),
            (json!({ "deal_id": "X", "amount": "lots" }), 422, Some("amount")),
            (json!({ "deal_id": "X", "amount": 10, "created_date": "yesterday" }), 422, Some("created_date")),
            (json!({ "deal_id": "X", "amount": 10, "industry": 7 }), 422, Some("industry")),
            (json!({ "deal_id": "X", "amount": 10, "segments": { "planet": "Mars" } }), 422, Some("segments.planet")),
            (json!({ "deal_id": "X", "stage": "Demo" }), 422, Some("amount")),
        ];
        for (body, want, field) in checks {
            let (status, error) = server.post("/v1/deals/score", &t, &body).await;
            assert_eq!(status, want, "{b}: {body} → {error}");
            let code = if want == 404 { "not_found" } else { "validation_error" };
            assert_eq!(error["error"], code, "{b}: {error}");
            if let Some(field) = field {
                assert_eq!(error["details"]["field"], field, "{b}: {body} → {error}");
            }
        }
        let raw = server
            .http
            .post(server.url("/v1/deals/score"))
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("post");
        let (status, error) = tests::json_of(raw).await;
        assert_eq!((status, &error["error"]), (400, &json!("bad_request")), "{b}");
        // A closed deal is not scored.
        let closed =
            dataset.deals.iter().find(|d| d.outcome == engine::domain::Outcome::Won).expect("won deal").id.to_string();
        let (status, error) = server.post("/v1/deals/score", &t, &json!({ "deal_id": closed })).await;
        assert_eq!(status, 422, "{b}: {error}");
        assert!(error["message"].as_str().unwrap_or_default().contains("already won"));
    }
}

#[tokio::test]
async fn tokens_that_are_missing_forged_expired_or_foreign_are_refused() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, _) = server(store, |_| {}).await;
        let path = server.url("/v1/pipeline/metrics");
        let none = server.http.get(&path).send().await.expect("GET");
        assert_eq!(none.status(), 401, "{b}");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let forged = tests::token_with("another-secret-0123456789abcdef0123456789", "acme", "admin", Role::Admin, 3600);
        for bad in [forged, token("acme", "admin", Role::Admin, -600), "not.a.jwt".to_owned()] {
            let (status, error) = server.get("/v1/pipeline/metrics", &bad).await;
            assert_eq!((status, &error["error"]), (401, &json!("unauthorized")), "{b}");
            assert_eq!(error["message"], "Invalid or expired JWT token");
        }
        // Within the clock-skew leeway an expired token still passes.
        assert_eq!(server.get("/v1/pipeline/metrics", &token("acme", "admin", Role::Admin, -30)).await.0, 200, "{b}");
    }
}

#[tokio::test]
async fn a_tenant_cannot_read_or_change_another_tenants_deals_through_any_endpoint() {
    for store in each_store().await {
        let b = store.store.backend();
        let today = chrono::Utc::now().date_naive();
        // Tenant globex has deals whose ids do not exist in acme.
        let globex = tests::generated_dataset(300, 9, today);
        let mut records: Vec<engine::record::DealRecord> = globex.records().collect();
        for r in &mut records {
            r.id = format!("G-{}", r.id);
        }
        let batch = bot::store::ImportBatch {
            import_id: "g1".into(),
            source: "t".into(),
            at: chrono::Utc::now(),
            spec: engine::record::SchemaSpec::of(&globex.schema),
            records: records.clone(),
            rejected: Vec::new(),
            rows_read: records.len(),
        };
        let g = bot::store::TenantId::parse("globex").expect("tenant");
        store.store.import(&g, &batch).await.expect("import globex");
        // Globex has its own admin, of the same name as acme's.
        store
            .store
            .upsert_user(&g, &bot::store::User::named("admin", "Globex Admin", Role::Admin))
            .await
            .expect("admin");
        let (server, _) = server(store, |_| {}).await;
        let acme = admin();
        let foreign =
            &records.iter().find(|r| r.outcome == engine::domain::Outcome::Open).expect("open globex deal").id;
        assert_eq!(server.get(&format!("/v1/deals/{foreign}"), &acme).await.0, 404, "{b}");
        assert_eq!(server.post("/v1/deals/score", &acme, &json!({ "deal_id": foreign })).await.0, 404, "{b}");
        let (_, page) = server.get("/v1/deals/high-risk?limit=200&risk_category=low,medium,high,critical", &acme).await;
        assert!(
            page["deals"]
                .as_array()
                .expect("deals")
                .iter()
                .all(|d| !d["deal_id"].as_str().unwrap_or_default().starts_with("G-")),
            "{b}"
        );
        // Training in acme leaves globex without a model; globex's deals are untouched.
        assert_eq!(server.post("/v1/models/train", &acme, &json!({})).await.0, 200, "{b}");
        assert!(server.store.store.models(&g).await.expect("models").is_empty(), "{b}");
        let after = server.store.store.deal(&g, foreign).await.expect("read").expect("deal");
        assert_eq!(after.record, records.iter().find(|r| &r.id == foreign).cloned().expect("record"));
        // A valid token for globex sees globex only.
        let g_token = token("globex", "admin", Role::Admin, 3600);
        let (status, deal) = server.get(&format!("/v1/deals/{foreign}"), &g_token).await;
        assert_eq!((status, &deal["deal"]["id"]), (200, &json!(foreign)), "{b}");
        assert_eq!(server.get("/v1/deals/D000001", &g_token).await.0, 404, "{b}");
    }
}

#[tokio::test]
async fn reps_see_their_own_deals_managers_their_team_admins_everything() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, dataset) = server(store, |_| {}).await;
        let rep = token("acme", "rep_1", Role::Rep, 3600);
        let all = "/v1/deals/high-risk?limit=200&risk_category=low,medium,high,critical";
        let (status, mine) = server.get(all, &rep).await;
        assert_eq!(status, 200, "{b}");
        let owners: std::collections::HashSet<&str> =
            mine["deals"].as_array().expect("deals").iter().filter_map(|d| d["rep_id"].as_str()).collect();
        assert_eq!(owners.into_iter().collect::<Vec<_>>(), ["rep_1"], "{b}");
        let other = open_deal_of(&dataset, "rep_2");
        let (status, error) = server.get(&format!("/v1/deals/{other}"), &rep).await;
        assert_eq!((status, &error["error"]), (403, &json!("forbidden")), "{b}");
        assert_eq!(server.post("/v1/deals/score", &rep, &json!({ "deal_id": other })).await.0, 403);
        assert_eq!(server.get(&format!("/v1/deals/{}", open_deal_of(&dataset, "rep_1")), &rep).await.0, 200);
        // manager_1 leads rep_1 … rep_6.
        let manager = token("acme", "manager_1", Role::Manager, 3600);
        let (_, team) = server.get(all, &manager).await;
        let team_owners: std::collections::BTreeSet<&str> =
            team["deals"].as_array().expect("deals").iter().filter_map(|d| d["rep_id"].as_str()).collect();
        assert!(
            team_owners.iter().all(|o| ["rep_1", "rep_2", "rep_3", "rep_4", "rep_5", "rep_6"].contains(o)),
            "{b}: {team_owners:?}"
        );
        assert!(team_owners.len() > 1);
        let (_, everything) = server.get(all, &admin()).await;
        assert!(everything["pagination"]["total_count"].as_u64() > team["pagination"]["total_count"].as_u64());
        for path in ["/v1/models/performance"] {
            assert_eq!(server.get(path, &rep).await.0, 403, "{b}");
            assert_eq!(server.get(path, &manager).await.0, 403, "{b}");
            assert_eq!(server.get(path, &admin()).await.0, 200, "{b}");
        }
        assert_eq!(server.post("/v1/models/train", &manager, &json!({})).await.0, 403, "{b}");
    }
}

#[tokio::test]
async fn the_high_risk_list_filters_sorts_pages_and_checks_its_parameters() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, _) = server(store, |_| {}).await;
        let t = admin();
        let (status, page) =
            server.get("/v1/deals/high-risk?risk_category=critical&limit=10&sort_by=risk_score", &t).await;
        assert_eq!(status, 200, "{b}: {page}");
        let deals = page["deals"].as_array().expect("deals");
        assert!(deals.iter().all(|d| d["risk_category"] == "critical"));
        assert!(deals.windows(2).all(|w| w[0]["risk_score"].as_u64() >= w[1]["risk_score"].as_u64()));
        assert_eq!(page["pagination"]["limit"], 10);
        assert_eq!(page["pagination"]["has_more"], json!(page["pagination"]["total_count"].as_u64().unwrap_or(0) > 10));
        assert!(page["summary"]["total_at_risk_revenue"].as_f64().is_some_and(|r| r > 0.0));
        let (_, by_amount) = server.get("/v1/deals/high-risk?sort_by=amount&order=asc&limit=20", &t).await;
        let amounts: Vec<f64> =
            by_amount["deals"].as_array().expect("deals").iter().filter_map(|d| d["amount"].as_f64()).collect();
        assert!(amounts.windows(2).all(|w| w[0] <= w[1]), "{b}: {amounts:?}");
        for (query, field) in [
            ("limit=500", "limit"),
            ("limit=0", "limit"),
            ("sort_by=size", "sort_by"),
            ("order=up", "order"),
            ("risk_category=scary", "risk_category"),
        ] {
            let (status, error) = server.get(&format!("/v1/deals/high-risk?{query}"), &t).await;
            assert_eq!((status, &error["details"]["field"]), (422, &json!(field)), "{b}: {query}");
        }
        assert_eq!(server.get("/v1/deals/high-risk?limit=many", &t).await.0, 400, "{b}");
    }
}

#[tokio::test]
async fn pipeline_metrics_and_model_performance_describe_the_tenant() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, _) = server(store, |_| {}).await;
        let (status, m) = server.get("/v1/pipeline/metrics", &admin()).await;
        assert_eq!(status, 200, "{b}: {m}");
        let value = m["pipeline_value"].as_f64().expect("value");
        let adjusted = m["risk_adjusted_value"].as_f64().expect("adjusted");
        assert!(adjusted > 0.0 && adjusted < value, "{b}");
        assert!((m["optimism_gap"].as_f64().expect("gap") - (value - adjusted)).abs() < 1.0);
        let open = m["total_open_deals"].as_u64().expect("open");
        let distribution: u64 =
            m["risk_distribution"].as_object().expect("distribution").values().filter_map(Value::as_u64).sum();
        assert_eq!(distribution, open, "{b}");
        assert!(m["win_rate_pct"].as_f64().is_some_and(|w| (0.0..=100.0).contains(&w)));
        assert!(m["trend_indicators"]["open_deals_change_7d"].is_i64());
        let (status, perf) = server.get("/v1/models/performance", &admin()).await;
        assert_eq!(status, 200, "{b}: {perf}");
        assert!(perf["performance_metrics"]["roc_auc"].as_f64().is_some_and(|a| a > 0.6));
        assert_eq!(perf["models"][0]["status"], "champion");
        let shares: f64 =
            perf["prediction_distribution"].as_object().expect("shares").values().filter_map(Value::as_f64).sum();
        assert!((shares - 1.0).abs() < 0.01, "{b}: {shares}");
    }
}

#[tokio::test]
async fn alert_settings_are_validated_stored_and_audited() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, _) = server(store, |_| {}).await;
        let rep = token("acme", "rep_3", Role::Rep, 3600);
        let settings = json!({
            "critical_deals": { "enabled": true, "channels": ["slack", "email"], "threshold": 75 },
            "daily_digest": { "enabled": true, "time": "08:00", "timezone": "America/New_York", "max_deals": 10, "min_risk_score": 51 },
            "quiet_hours": { "enabled": true, "start": "20:00", "end": "08:00" }
        });
        let (status, body) = server.post("/v1/alerts/configure", &rep, &settings).await;
        assert_eq!(
            (status, &body["settings_updated"], &body["user_id"]),
            (200, &json!(true), &json!("rep_3")),
            "{b}: {body}"
        );
        let t = bot::store::TenantId::parse("acme").expect("tenant");
        let stored = server.store.store.alert_settings(&t, "rep_3").await.expect("read").expect("stored");
        assert_eq!(stored["daily_digest"]["timezone"], "America/New_York");
        // Sending one section keeps the others.
        server
            .post("/v1/alerts/configure", &rep, &json!({ "quiet_hours": { "start": "21:00", "end": "07:00" } }))
            .await;
        let stored = server.store.store.alert_settings(&t, "rep_3").await.expect("read").expect("stored");
        assert_eq!(
            (stored["quiet_hours"]["start"].as_str(), stored["daily_digest"]["time"].as_str()),
            (Some("21:00"), Some("08:00")),
            "{b}"
        );
        for (bad, field) in [
            (json!({ "daily_digest": { "enabled": true, "timezone": "Mars/Olympus" } }), "daily_digest.timezone"),
            (json!({ "daily_digest": { "enabled": true, "time": "25:00" } }), "daily_digest.time"),
            (json!({ "critical_deals": { "enabled": true, "threshold": 150 } }), "critical_deals.threshold"),
            (json!({ "critical_deals": { "enabled": true, "channels": ["pager"] } }), "critical_deals.channels"),
            (json!({ "quiet_hours": { "start": "20:00" } }), "quiet_hours"),
        ] {
            let (status, error) = server.post("/v1/alerts/configure", &rep, &bad).await;
            assert_eq!(status, 422, "{b}: {bad} → {error}");
            assert_eq!(error["details"]["field"], field, "{b}: {bad} → {error}");
        }
        let (status, _) = server.post("/v1/alerts/configure", &rep, &json!({ "snooze_forever": true })).await;
        assert_eq!(status, 422, "unknown settings are refused, not ignored");
        let log = server.store.store.audit_log(&t, 50).await.expect("audit");
        assert_eq!(log.iter().filter(|e| e.action == "settings.update" && e.actor == "rep_3").count(), 2, "{b}");
    }
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_post_do_nothing_twice() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, _) = server(store, |_| {}).await;
        let t = admin();
        let send = |key: &str, body: &Value| {
            server
                .http
                .post(server.url("/v1/models/train"))
                .bearer_auth(&t)
                .header("Idempotency-Key", key)
                .json(body)
                .send()
        };
        let first = send("train-1", &json!({ "model": "logistic" })).await.expect("first");
        assert!(first.headers().get("idempotent-replayed").is_none());
        let (s1, b1) = tests::json_of(first).await;
        let second = send("train-1", &json!({ "model": "logistic" })).await.expect("retry");
        assert_eq!(second.headers()["idempotent-replayed"], "true", "{b}");
        let (s2, b2) = tests::json_of(second).await;
        assert_eq!((s1, &b1), (s2, &b2), "{b}: the retry gets the first response");
        let t_id = bot::store::TenantId::parse("acme").expect("tenant");
        let log = server.store.store.audit_log(&t_id, 50).await.expect("audit");
        assert_eq!(log.iter().filter(|e| e.action == "model.train").count(), 1, "{b}: trained once");
        let (status, error) =
            tests::json_of(send("train-1", &json!({ "model": "additive" })).await.expect("reuse")).await;
        assert_eq!((status, &error["details"]["field"]), (422, &json!("Idempotency-Key")), "{b}");
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_user_and_per_tenant() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, _) = server(store, |s| {
            s.limits.per_user_per_minute = 3;
            s.limits.per_tenant_per_minute = 5;
        })
        .await;
        let alice = token("acme", "rep_1", Role::Rep, 3600);
        let bob = token("acme", "rep_2", Role::Rep, 3600);
        for _ in 0..3 {
            assert_eq!(server.get("/v1/deals/high-risk", &alice).await.0, 200, "{b}");
        }
        let limited = server.http.get(server.url("/v1/deals/high-risk")).bearer_auth(&alice).send().await.expect("GET");
        assert_eq!(limited.status(), 429, "{b}");
        let retry: u64 = limited.headers()["retry-after"].to_str().expect("header").parse().expect("seconds");
        assert!((1..=60).contains(&retry));
        let (_, body) = tests::json_of(limited).await;
        assert_eq!((body["error"].as_str(), body["retry_after"].as_u64()), (Some("rate_limit_exceeded"), Some(retry)));
        // Bob has his own allowance, until the tenant's 5 per minute are used up.
        assert_eq!(server.get("/v1/deals/high-risk", &bob).await.0, 200, "{b}");
        assert_eq!(server.get("/v1/deals/high-risk", &bob).await.0, 200, "{b}");
        let (status, body) = server.get("/v1/deals/high-risk", &bob).await;
        assert_eq!(status, 429, "{b}");
        assert!(body["message"].as_str().unwrap_or_default().contains("per tenant"));
    }
}

#[tokio::test]
async fn reads_by_id_are_audited_with_their_request_id() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, dataset) = server(store, |_| {}).await;
        let deal = open_deal_of(&dataset, "rep_4");
        let response = server
            .http
            .get(server.url(&format!("/v1/deals/{deal}")))
            .bearer_auth(admin())
            .header("x-request-id", "audit-me-42")
            .send()
            .await
            .expect("GET");
        let ours = response.headers()["x-request-id"].to_str().expect("text").to_owned();
        let (status, body) = tests::json_of(response).await;
        assert_eq!(status, 200, "{b}: {body}");
        assert_eq!(body["deal"]["id"], json!(deal));
        assert!(body["score"]["risk_score"].is_u64(), "the stored score comes with the deal");
        // Reads are written behind the request: wait for the writer.
        server.state.audit.flush().await;
        let t = bot::store::TenantId::parse("acme").expect("tenant");
        let log = server.store.store.audit_log(&t, 10).await.expect("audit");
        let entry = log.iter().find(|e| e.action == "deal.read").expect("audited");
        assert_eq!(
            (entry.target.as_deref(), entry.request_id.as_deref(), entry.actor.as_str()),
            (Some(deal.as_str()), Some(ours.as_str()), "admin"),
            "{b}: the audit log has our id for the request, not the one the client sent"
        );
    }
}

#[tokio::test]
async fn after_a_change_the_previous_engine_answers_while_the_new_one_is_built() {
    let store = tests::sqlite_store().await;
    let (server, dataset) = server(store, |_| {}).await;
    let t = bot::store::TenantId::parse("acme").expect("tenant");
    let today = chrono::Utc::now().date_naive();
    let cache = &server.state.cache;
    let first = cache.get(&server.state.store, &t, today).await.expect("engine").expect("built");
    // An import changes one deal's amount: the tenant's data version moves.
    let mut record = dataset.records().next().expect("a deal");
    let old_amount = record.amount;
    record.amount = Some(record.amount.unwrap_or(1000.0) + 12_345.0);
    let batch = bot::store::ImportBatch {
        import_id: "change-1".into(),
        source: "test".into(),
        at: chrono::Utc::now(),
        spec: engine::record::SchemaSpec::of(&dataset.schema),
        records: vec![record.clone()],
        rejected: Vec::new(),
        rows_read: 1,
    };
    server.store.store.import(&t, &batch).await.expect("import");
    let amount = |e: &bot::server::tenants::TenantEngine| {
        let i = e.index[&record.id];
        e.dataset.deals[i].amount.map(engine::domain::Amount::get)
    };
    // The next request is answered at once, from the engine it had.
    let stale = cache.get(&server.state.store, &t, today).await.expect("engine").expect("stale");
    assert!(std::sync::Arc::ptr_eq(&first, &stale), "answered from the previous engine, not after a rebuild");
    assert_eq!(amount(&stale), old_amount);
    // Soon the rebuilt engine serves the change.
    let started = std::time::Instant::now();
    loop {
        let e = cache.get(&server.state.store, &t, today).await.expect("engine").expect("engine");
        if amount(&e) == record.amount {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the rebuild never landed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `POST /v1/ask` reads the question the way the chat bot does, answers from the caller's
/// deals, refuses another rep's, and says what is wrong with a bad request.
#[tokio::test]
async fn questions_are_answered_over_the_api_within_the_callers_scope() {
    for store in each_store().await {
        let b = store.store.backend();
        let (server, _) = server(store, |_| {}).await;
        let today = chrono::Utc::now().date_naive();
        let (status, asked) =
            server.post("/v1/ask", &admin(), &json!({ "question": "win rate in North America last quarter" })).await;
        assert_eq!(status, 200, "{b}: {asked}");
        assert_eq!(asked["intent"], "win_rate", "{b}");
        assert_eq!(asked["filters"], json!({ "region": "North America" }), "{b}");
        assert!(asked["period"]["from"].as_str().is_some_and(|f| f < today.to_string().as_str()), "{b}: {asked}");
        assert!(
            asked["answer"].as_str().is_some_and(|a| a.contains("Win rate") || a.contains("No deals")),
            "{b}: {asked}"
        );
        assert!(asked["understood"].as_str().is_some_and(|u| u.starts_with("Understood: win rate")), "{b}");

        // A rep: their own risky deals, and a refusal for another rep's.
        let rep = token("acme", "rep_1", Role::Rep, 3600);
        let (_, mine) = server.post("/v1/ask", &rep, &json!({ "question": "list all high risk deals" })).await;
        assert_eq!(mine["intent"], "at_risk_deals", "{b}: {mine}");
        let deals = mine["data"]["deals"].as_array().expect("deals");
        assert!(deals.iter().all(|d| d["owner"] == "rep_1"), "{b}: {mine}");
        let (status, other) = server.post("/v1/ask", &rep, &json!({ "question": "how is rep_2 doing" })).await;
        assert_eq!(status, 200, "{b}");
        assert!(other["answer"].as_str().is_some_and(|a| a.contains("don't have access")), "{b}: {other}");
        assert!(other["data"].is_null(), "{b}: nothing of rep_2's is returned: {other}");

        // An ask-back button's answer: the intent given.
        let (_, forced) =
            server.post("/v1/ask", &admin(), &json!({ "question": "apac", "intent": "pipeline_summary" })).await;
        assert_eq!(
            (forced["intent"].as_str(), forced["filters"]["region"].as_str()),
            (Some("pipeline_summary"), Some("APAC"))
        );
        assert!(forced["answer"].as_str().is_some_and(|a| a.contains("open deal")), "{b}: {forced}");

        // Bad requests name the field.
        let (status, error) = server.post("/v1/ask", &admin(), &json!({ "question": "  " })).await;
        assert_eq!((status, error["details"]["field"].as_str()), (422, Some("question")), "{b}: {error}");
        let (status, error) = server.post("/v1/ask", &admin(), &json!({ "question": "x", "intent": "weather" })).await;
        assert_eq!(status, 422, "{b}: {error}");
        assert!(error.to_string().contains("intent"), "{b}: {error}");
        let (status, _) = server.post("/v1/ask", "not-a-token", &json!({ "question": "help" })).await;
        assert_eq!(status, 401, "{b}");
    }
}
