//! Spend in the database, through the gateway: the spend endpoints on SQLite and PostgreSQL,
//! 1,000 concurrent requests making 1,000 rows, exact key spend and the budget it then
//! enforces, `disable_spend_logs`, and a shutdown under load that loses no record.
//!
//! Prices are powers of two (exact in binary), so sums are exact whatever their order: the mock
//! answers "hi" with 1 input and 4 output tokens, 2^-10 + 4 x 2^-12 = 2^-9 USD a request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llmgate_tests::open_gateway as open;
use std::path::PathBuf;
use std::time::Duration;

use llmgate_tests::{postgres_url, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

const MASTER: &str = "sk-master-spend";
/// What one "hi" costs.
const COST: f64 = 1.0 / 512.0;

fn unique() -> String {
    llmgate::auth::generate_secret()[3..15].to_ascii_lowercase()
}

fn yaml(mock: &MockProvider, database_url: &str, extra: &str) -> String {
    let mut y = String::from("model_list:\n");
    for name in ["gpt", "claude"] {
        y.push_str(&format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}-upstream\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      id: {name}-0\n      input_cost_per_token: 0.0009765625\n      output_cost_per_token: 0.000244140625\n",
            mock.v1_url()
        ));
    }
    y.push_str(&format!(
        "general_settings:\n  master_key: {MASTER}\n  database_url: {database_url}\n{extra}"
    ));
    y
}

/// A SQLite file in the temp dir, removed with its WAL files when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        TempDb(std::env::temp_dir().join(format!("llmgate-spend-{}.db", unique())))
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A PostgreSQL schema of the test's own (totals over the whole log stay the test's), dropped
/// at the end; `None` without PostgreSQL.
struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    async fn new() -> Option<PgSchema> {
        let url = postgres_url().await?;
        let name = format!("spend_it_{}", unique());
        let mut conn = PgConnection::connect(&url).await.unwrap();
        conn.execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .unwrap();
        Some(PgSchema {
            url: format!("{url}?options=-c%20search_path%3D{name}"),
            name,
        })
    }

    async fn drop_schema(self) {
        let base = self.url.split('?').next().unwrap().to_owned();
        let mut conn = PgConnection::connect(&base).await.unwrap();
        conn.execute(format!("DROP SCHEMA {} CASCADE", self.name).as_str())
            .await
            .unwrap();
    }
}

async fn generate(admin: &TestGateway, body: Value) -> (String, String) {
    let res = admin.post("/key/generate", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["token_id"].as_str().unwrap().to_owned(),
    )
}

fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = i64::try_from(now / 86_400).unwrap();
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The endpoints, on whichever database the gateway has.
async fn endpoints(gw: &TestGateway, gateway: &llmgate::Gateway) {
    let admin = gw.handle().with_key(MASTER);
    let team = format!("team-{}", unique());
    assert_eq!(
        admin
            .post("/team/new", &json!({"team_id": team}))
            .await
            .status,
        200
    );
    let (a, a_token) = generate(
        &admin,
        json!({"key_alias": format!("app-{}", unique()), "team_id": team, "user_id": "ana"}),
    )
    .await;
    let (b, b_token) = generate(&admin, json!({})).await;
    let user_a = gw.handle().with_key(&a);
    let user_b = gw.handle().with_key(&b);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let res = user_a.chat("gpt", "hi").await;
        assert_eq!(res.status, 200);
        ids.push(res.header("x-llmgate-request-id").unwrap().to_owned());
    }
    assert_eq!(user_b.chat("claude", "hi").await.status, 200);
    // Tags from the body's metadata and from LiteLLM's `x-litellm-tags` header.
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"tags": ["batch-job"]}});
    let res = user_b
        .send(
            http::Method::POST,
            "/v1/chat/completions",
            body.to_string(),
            &[("x-litellm-tags", "nightly, batch-job,team-x")],
        )
        .await;
    assert_eq!(res.status, 200);
    let tagged_id = res.header("x-llmgate-request-id").unwrap().to_owned();
    gateway.flush_spend().await;

    // /spend/logs by key (secret or token), newest first.
    let logs = admin.get(&format!("/spend/logs?api_key={a}")).await;
    assert_eq!(logs.status, 200, "{}", logs.text());
    let logs = logs.json();
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let mut logged: Vec<_> = logs
        .iter()
        .map(|l| l["request_id"].as_str().unwrap())
        .collect();
    logged.sort_unstable();
    let mut sent: Vec<_> = ids.iter().map(String::as_str).collect();
    sent.sort_unstable();
    assert_eq!(logged, sent);
    let l = &logs[0];
    assert_eq!(l["api_key"], a_token.as_str());
    assert_eq!(l["spend"], COST);
    assert_eq!(l["total_tokens"], 5);
    assert_eq!(l["prompt_tokens"], 1);
    assert_eq!(l["completion_tokens"], 4);
    assert_eq!(l["model_group"], "gpt");
    assert_eq!(l["model"], "gpt-upstream");
    assert_eq!(l["model_id"], "gpt-0");
    assert_eq!(l["cache_hit"], "False");
    assert_eq!(l["status"], "success");
    assert_eq!(l["call_type"], "acompletion");
    assert!(l["startTime"].as_str().unwrap().ends_with('Z'), "{l}");
    assert!(l["endTime"].as_str().unwrap() >= l["startTime"].as_str().unwrap());
    assert_eq!(
        admin
            .get(&format!("/spend/logs?api_key={b_token}"))
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // By request id.
    let one = admin
        .get(&format!("/spend/logs?request_id={}", ids[0]))
        .await
        .json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["request_id"], ids[0].as_str());
    // Tags.
    let tagged = admin
        .get(&format!("/spend/logs?api_key={b}&request_id={tagged_id}"))
        .await
        .json();
    assert_eq!(
        tagged[0]["request_tags"],
        json!(["batch-job", "nightly", "team-x"])
    );

    // Date ranges: today holds them, yesterday's range nothing.
    let today = today();
    let in_range = admin
        .get(&format!("/spend/logs?start_date={today}&end_date={today}"))
        .await
        .json();
    assert_eq!(in_range.as_array().unwrap().len(), 5);
    let old = admin
        .get("/spend/logs?start_date=2020-01-01&end_date=2020-01-31")
        .await
        .json();
    assert_eq!(old, json!([]));
    let bad = admin.get("/spend/logs?start_date=01/02/2026").await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("YYYY-MM-DD"), "{}", bad.text());

    // Totals per model, per key, and overall.
    let models = admin.get("/global/spend/models").await.json();
    assert_eq!(
        models,
        json!([{"model": "gpt", "total_spend": 4.0 * COST}, {"model": "claude", "total_spend": COST}])
    );
    assert_eq!(
        admin.get("/global/spend/models?limit=1").await.json()[0]["model"],
        "gpt"
    );
    let keys = admin.get("/global/spend/keys").await.json();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["api_key"], a_token.as_str());
    assert!(keys[0]["key_alias"].as_str().unwrap().starts_with("app-"));
    assert_eq!(keys[0]["total_spend"], 3.0 * COST);
    assert_eq!(keys[1]["total_spend"], 2.0 * COST);
    let total = admin.get("/global/spend").await.json();
    assert_eq!(total, json!({"spend": 5.0 * COST, "max_budget": null}));
    let total = admin
        .get(&format!(
            "/global/spend?start_date={today}&end_date={today}"
        ))
        .await
        .json();
    assert_eq!(total["spend"], 5.0 * COST);
    let total = admin
        .get("/global/spend?start_date=2020-01-01&end_date=2020-01-02")
        .await
        .json();
    assert_eq!(total["spend"], 0.0);

    // Per provider and per UTC day, summed in the database.
    let providers = admin
        .get(&format!(
            "/global/spend/provider?start_date={today}&end_date={today}"
        ))
        .await
        .json();
    assert_eq!(
        providers,
        json!([{"provider": "openai", "requests": 5, "spend": 5.0 * COST}])
    );
    let days = admin.get("/global/spend/days").await.json();
    assert_eq!(
        days,
        json!([{"date": today, "requests": 5, "spend": 5.0 * COST}])
    );
    let none = admin
        .get("/global/spend/days?start_date=2020-01-01&end_date=2020-01-02")
        .await
        .json();
    assert_eq!(none, json!([]));

    // Per team and per user (LiteLLM's /global/spend/teams shape), spend without one as null.
    let teams = admin.get("/global/spend/teams").await.json();
    assert_eq!(teams["teams"], json!([team]));
    assert_eq!(
        teams["total_spend_per_team"],
        json!([{"team_id": team, "total_spend": 3.0 * COST, "requests": 3},
               {"team_id": null, "total_spend": 2.0 * COST, "requests": 2}])
    );
    let users = admin.get("/global/spend/users").await.json();
    assert_eq!(
        users,
        json!([{"user_id": "ana", "total_spend": 3.0 * COST, "requests": 3},
               {"user_id": null, "total_spend": 2.0 * COST, "requests": 2}])
    );
    // LiteLLM's report: per day, per team, per model.
    let report = admin
        .get(&format!(
            "/global/spend/report?start_date={today}&end_date={today}&group_by=team"
        ))
        .await
        .json();
    assert_eq!(report.as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report[0]["group_by_day"], today.as_str());
    let teams = &report[0]["teams"];
    assert_eq!(teams[0]["team_name"], Value::Null);
    assert_eq!(teams[0]["total_requests"], 2);
    assert_eq!(teams[1]["team_name"], team.as_str());
    assert_eq!(teams[1]["total_spend"], 3.0 * COST);
    assert_eq!(teams[1]["metadata"][0]["model"], "gpt");
    let by_key = admin
        .get("/global/spend/report?group_by=api_key")
        .await
        .json();
    assert_eq!(by_key[0]["api_keys"].as_array().unwrap().len(), 2);
    admin
        .get("/global/spend/report?group_by=planet")
        .await
        .openai_error(400);
    // LiteLLM's daily activity: the master key sees all, a key its own user's.
    let activity = admin.get("/user/daily/activity").await.json();
    assert_eq!(activity["metadata"]["total_api_requests"], 5, "{activity}");
    assert_eq!(activity["results"][0]["date"], today.as_str());
    let gpt = &activity["results"][0]["breakdown"]["models"]["gpt"]["metrics"];
    assert_eq!(gpt["api_requests"], 4);
    assert_eq!(
        activity["results"][0]["breakdown"]["providers"]["openai"]["metrics"]["spend"],
        5.0 * COST
    );
    let own = user_a.get("/user/daily/activity").await.json();
    assert_eq!(own["metadata"]["total_api_requests"], 3, "{own}");
    let info = admin
        .get(&format!("/team/info?team_id={team}"))
        .await
        .json();
    assert_eq!(
        info["team_info"]["spend"],
        3.0 * COST,
        "the team was charged with the log"
    );

    // The key's own spend, charged from the same records.
    let info = admin.get(&format!("/key/info?key={a}")).await.json();
    assert_eq!(info["info"]["spend"], 3.0 * COST);

    // Master key only.
    let denied = user_a.get("/global/spend").await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(gw.handle().get("/spend/logs").await.status, 401);
}

#[tokio::test]
async fn spend_endpoints_on_sqlite() {
    let mock = MockProvider::start().await;
    let db = TempDb::new();
    let gateway = open(&yaml(&mock, &db.url(), "")).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    endpoints(&gw, &gateway).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn spend_endpoints_on_postgres() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let mock = MockProvider::start().await;
    let gateway = open(&yaml(&mock, &schema.url, "")).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    endpoints(&gw, &gateway).await;
    gw.shutdown().await;
    schema.drop_schema().await;
}

#[tokio::test]
async fn without_a_master_key_there_is_no_spend_database() {
    let mock = MockProvider::start().await;
    let y = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt\n      api_base: {}\n",
        mock.v1_url()
    );
    let gw = TestGateway::start(&y).await;
    let res = gw.get("/global/spend").await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["error"]["code"], "no_database");
}

/// 1,000 requests at once: exactly 1,000 rows, one per request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_requests_make_a_thousand_rows() {
    let mock = MockProvider::start().await;
    let db = TempDb::new();
    let gateway = open(&yaml(&mock, &db.url(), "")).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    let (secret, _) = generate(&gw.handle().with_key(MASTER), json!({})).await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let user = gw.handle().with_key(&secret);
            tokio::spawn(async move {
                let res = user.chat("gpt", "hi").await;
                assert_eq!(res.status, 200, "{}", res.text());
                res.header("x-llmgate-request-id").unwrap().to_owned()
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 1000);
    gateway.flush_spend().await;
    let admin = gw.handle().with_key(MASTER);
    let logs = admin
        .get(&format!("/spend/logs?api_key={secret}&limit=5000"))
        .await
        .json();
    let logged: std::collections::HashSet<String> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logs.as_array().unwrap().len(), 1000);
    assert_eq!(logged, ids);
    assert_eq!(
        admin.get("/global/spend").await.json()["spend"],
        1000.0 * COST
    );
    gw.shutdown().await;
}

/// 100 priced requests in parallel against a budget worth 100: those the budget ledger admits
/// (each reserves its estimate while in flight) are charged exactly, what is left is spent one
/// request at a time, and the budget then blocks the key at once (no TTL to wait for).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_spend_is_exact_and_the_budget_then_blocks() {
    let mock = MockProvider::start().await;
    let db = TempDb::new();
    let gateway = open(&yaml(&mock, &db.url(), "  user_api_key_cache_ttl: 600\n")).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    let admin = gw.handle().with_key(MASTER);
    let (secret, _) = generate(&admin, json!({"max_budget": 100.0 * COST})).await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let user = gw.handle().with_key(&secret);
            tokio::spawn(async move { user.chat("gpt", "hi").await.status })
        })
        .collect();
    let mut paid = 0;
    for t in tasks {
        match t.await.unwrap().as_u16() {
            200 => paid += 1,
            status => assert_eq!(status, 400),
        }
    }
    assert!(paid >= 1);
    // A refusal is final once every settlement has landed: a request refused while earlier
    // ones still held their estimates (settlements land in the background, later under load)
    // is asked again after a moment.
    let mut refused_once = false;
    loop {
        if gw.handle().with_key(&secret).chat("gpt", "hi").await.status == 200 {
            paid += 1;
            refused_once = false;
            assert!(paid <= 101, "{paid} paid against a budget worth 100");
        } else if refused_once {
            break;
        } else {
            refused_once = true;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    // 99 when the last admitted request's settlement had not landed when the next arrived (its
    // estimate still counted); 101 when the 100 costs sum just below the budget in floating
    // point.
    assert!((99..=101).contains(&paid), "{paid}");
    gateway.flush_spend().await;
    let info = admin.get(&format!("/key/info?key={secret}")).await.json();
    assert_eq!(info["info"]["spend"], f64::from(paid) * COST);
    assert_eq!(
        info["info"]["model_spend"]["gpt"],
        f64::from(paid) * COST,
        "{info}"
    );

    let res = gw.handle().with_key(&secret).chat("gpt", "hi").await;
    let err = res.openai_error(400);
    assert_eq!(err["type"], "budget_exceeded", "{err}");
    gw.shutdown().await;
}

/// `disable_spend_logs`: keys are charged, no log rows kept.
#[tokio::test]
async fn disabled_spend_logs_still_charge_keys() {
    let mock = MockProvider::start().await;
    let db = TempDb::new();
    let gateway = open(&yaml(&mock, &db.url(), "  disable_spend_logs: true\n")).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    let admin = gw.handle().with_key(MASTER);
    let (secret, _) = generate(&admin, json!({})).await;
    for _ in 0..2 {
        assert_eq!(
            gw.handle().with_key(&secret).chat("gpt", "hi").await.status,
            200
        );
    }
    gateway.flush_spend().await;
    let info = admin.get(&format!("/key/info?key={secret}")).await.json();
    assert_eq!(info["info"]["spend"], 2.0 * COST);
    assert_eq!(admin.get("/spend/logs").await.json(), json!([]));
    assert_eq!(admin.get("/global/spend").await.json()["spend"], 0.0);
    gw.shutdown().await;
}

/// Requests in flight when the server is told to stop: each one that was answered is in the
/// database once the gateway has shut down, with a long batch interval that would otherwise
/// hold them in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_under_load_loses_no_record() {
    let mock = MockProvider::start().await;
    let db = TempDb::new();
    let config = yaml(&mock, &db.url(), "  proxy_batch_write_at: 3600\n");
    let gateway = open(&config).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    let (secret, _) = generate(&gw.handle().with_key(MASTER), json!({})).await;
    // 200 served, then 100 held upstream until the shutdown has begun.
    for _ in 0..200 {
        assert_eq!(
            gw.handle().with_key(&secret).chat("gpt", "hi").await.status,
            200
        );
    }
    let gate = Gate::new();
    for _ in 0..100 {
        mock.push(Behaviour::gated(&gate, 0));
    }
    let held: Vec<_> = (0..100)
        .map(|_| {
            let user = gw.handle().with_key(&secret);
            tokio::spawn(async move { user.chat("gpt", "hi").await.status })
        })
        .collect();
    gate.wait_for_arrivals(100).await;
    let stopping = tokio::spawn(gw.shutdown());
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.release();
    let mut answered = 200;
    for t in held {
        if t.await.unwrap() == 200 {
            answered += 1;
        }
    }
    stopping.await.unwrap();
    assert_eq!(answered, 300);
    assert_eq!(gateway.meter().queue().dropped(), 0);

    // A new gateway on the same file sees every record.
    drop(gateway);
    let gateway = open(&config).await;
    let gw = TestGateway::serve(gateway).await;
    let admin = gw.handle().with_key(MASTER);
    let logs = admin
        .get(&format!("/spend/logs?api_key={secret}&limit=5000"))
        .await
        .json();
    assert_eq!(logs.as_array().unwrap().len(), 300);
    let info = admin.get(&format!("/key/info?key={secret}")).await.json();
    assert_eq!(info["info"]["spend"], 300.0 * COST);
    gw.shutdown().await;
}
