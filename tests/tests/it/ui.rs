//! The admin UI at `/ui` through the real gateway: only the master key signs in (a virtual key
//! neither signs in nor reads `/ui/api/*`); a session calls the admin API through `/ui/api/*`,
//! changes need its CSRF token; a session outlives a config reload; `/ui/api/deployments`
//! shows a deployment that failed as cooling down. The browser side is `tests/ui/run`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{Method, StatusCode};
use llmgate_tests::{config_for, Behaviour, MockProvider, TestGateway, TestResponse};
use serde_json::json;

const MASTER: &str = "sk-master-ui";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// The gateway for `yaml` (whose last section is `general_settings`), its keys in memory.
async fn open(yaml: &str) -> llmgate::Gateway {
    llmgate_tests::open_gateway(&format!("{yaml}  database_url: \"sqlite::memory:\"\n")).await
}

async fn sign_in(gw: &TestGateway, key: &str) -> TestResponse {
    gw.send(Method::POST, "/ui/login", format!("key={key}"), &[FORM])
        .await
}

/// The session cookie (`name=value`) and the CSRF token of a page.
async fn session(gw: &TestGateway) -> (String, String) {
    let res = sign_in(gw, MASTER).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    let cookie = res.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = gw
        .send(Method::GET, "/ui/keys", "", &[("cookie", &cookie)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page
        .text()
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .unwrap()[..64]
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn only_the_master_key_signs_in_and_a_session_needs_its_csrf_token_to_change_things() {
    let mock = MockProvider::start().await;
    let gateway = open(&config_for(&[("gpt", &mock.v1_url())], Some(MASTER))).await;
    let gw = TestGateway::serve(gateway).await;
    let admin = gw.handle().with_key(MASTER);
    let made = admin
        .post("/key/generate", &json!({"key_alias": "ui-virtual"}))
        .await;
    let virtual_key = made.json()["key"].as_str().unwrap().to_owned();

    // A virtual key cannot sign in, nor call the UI's API; nor can anyone without a session.
    let refused = sign_in(&gw, &virtual_key).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.header("set-cookie").is_none());
    let res = gw
        .handle()
        .with_key(&virtual_key)
        .get("/ui/api/key/list")
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert_eq!(
        gw.get("/ui/api/key/list").await.status,
        StatusCode::UNAUTHORIZED
    );
    let page = gw.get("/ui/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), Some("/ui/login"));

    // A session reads through /ui/api/* as the master key.
    let (cookie, csrf) = session(&gw).await;
    let c = ("cookie", cookie.as_str());
    let list = gw.send(Method::GET, "/ui/api/key/list", "", &[c]).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert_eq!(list.json()["keys"].as_array().unwrap().len(), 1);
    // A change without the CSRF token is refused and changes nothing; with it, it is made.
    let body = json!({"key": virtual_key}).to_string();
    let ct = ("content-type", "application/json");
    let res = gw
        .send(Method::POST, "/ui/api/key/block", body.clone(), &[c, ct])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let user = gw.handle().with_key(&virtual_key);
    assert_eq!(user.chat("gpt", "hi").await.status, StatusCode::OK);
    let with = [c, ct, ("x-csrf-token", csrf.as_str())];
    let res = gw
        .send(Method::POST, "/ui/api/key/block", body, &with)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        user.chat("gpt", "hi").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_session_outlives_a_reload_and_a_failing_deployment_shows_as_cooling_down() {
    let good = MockProvider::start().await;
    let bad = MockProvider::start().await;
    bad.set_default(Behaviour::Status {
        status: StatusCode::UNAUTHORIZED,
        body: json!({"error": {"message": "bad key"}}).to_string().into(),
        headers: http::HeaderMap::new(),
    });
    let yaml = config_for(
        &[("gpt", &good.v1_url()), ("broken", &bad.v1_url())],
        Some(MASTER),
    );
    let gateway = open(&yaml).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    let (cookie, _) = session(&gw).await;
    let c = ("cookie", cookie.as_str());

    let admin = gw.handle().with_key(MASTER);
    assert_eq!(
        admin.chat("broken", "hi").await.status,
        StatusCode::UNAUTHORIZED
    );
    let view = gw.send(Method::GET, "/ui/api/deployments", "", &[c]).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text());
    let rows = view.json()["deployments"].as_array().unwrap().clone();
    let row = |name: &str| {
        rows.iter()
            .find(|d| d["model_name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("broken")["cooling_down"], true);
    assert_eq!(
        row("broken")["cooldown_reason"],
        "misconfigured (auth or model id)"
    );
    assert_eq!(row("gpt")["cooling_down"], false);

    let reloaded = llmgate_config::from_yaml(
        &format!(
            "{}  database_url: \"sqlite::memory:\"\n",
            config_for(&[("gpt", &good.v1_url())], Some(MASTER))
        ),
        std::path::Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap()
    .config;
    gateway.reload(reloaded).unwrap();
    let view = gw.send(Method::GET, "/ui/api/deployments", "", &[c]).await;
    assert_eq!(
        view.status,
        StatusCode::OK,
        "the session outlives the reload"
    );
    assert_eq!(view.json()["deployments"].as_array().unwrap().len(), 1);
}

/// `GET /global/overview` (and through `/ui/api/`): the request log of a window summed in the
/// database, with its buckets and top tables; `/ui/api/alerting/recent` reaches the alerting
/// view for a session.
#[tokio::test]
async fn the_overview_is_summed_on_the_server_and_alerts_reach_the_ui() {
    let good = MockProvider::start().await;
    let bad = MockProvider::start().await;
    bad.set_default(Behaviour::Status {
        status: StatusCode::TOO_MANY_REQUESTS,
        body: json!({"error": {"message": "slow down"}})
            .to_string()
            .into(),
        headers: http::HeaderMap::new(),
    });
    let yaml = config_for(
        &[("gpt", &good.v1_url()), ("broken", &bad.v1_url())],
        Some(MASTER),
    );
    let gateway = open(&yaml).await;
    let gw = TestGateway::serve(gateway.clone()).await;
    let admin = gw.handle().with_key(MASTER);
    for _ in 0..3 {
        assert_eq!(admin.chat("gpt", "hi").await.status, StatusCode::OK);
    }
    assert_ne!(admin.chat("broken", "hi").await.status, StatusCode::OK);
    gateway.flush_spend().await;

    let (cookie, _) = session(&gw).await;
    let c = ("cookie", cookie.as_str());
    let res = gw
        .send(Method::GET, "/ui/api/global/overview?window=hour", "", &[c])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let o = res.json();
    assert_eq!(
        (o["window"].clone(), o["bucket_seconds"].clone()),
        (json!("hour"), json!(300))
    );
    assert_eq!(
        (o["requests"].clone(), o["errors"].clone()),
        (json!(4), json!(1))
    );
    assert!(o["latency_p50_ms"].is_number() && o["latency_p95_ms"].is_number());
    let buckets = o["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 12);
    let in_buckets: i64 = buckets
        .iter()
        .map(|b| b["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(in_buckets, 4);
    assert_eq!(o["top_models"][0]["model_group"], "gpt");
    assert_eq!(o["top_models"][0]["requests"], 3);
    assert_eq!(o["top_models"][1]["errors"], 1);
    assert_eq!(
        o["top_keys"][0]["api_key"],
        serde_json::Value::Null,
        "the master key"
    );
    for (window, buckets) in [("day", 24), ("30d", 30)] {
        let o = admin
            .get(&format!("/global/overview?window={window}"))
            .await
            .json();
        assert_eq!(o["requests"], 4, "{window}");
        assert_eq!(o["buckets"].as_array().unwrap().len(), buckets);
    }
    assert_eq!(
        admin.get("/global/overview?window=week").await.status,
        StatusCode::BAD_REQUEST
    );
    let made = admin.post("/key/generate", &json!({})).await.json();
    let user = gw.handle().with_key(made["key"].as_str().unwrap());
    assert_eq!(
        user.get("/global/overview").await.status,
        StatusCode::FORBIDDEN
    );

    // Alerting is off here: the UI's view of it says so.
    let res = gw
        .send(Method::GET, "/ui/api/alerting/recent", "", &[c])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({"enabled": false, "alerts": [], "counts": []})
    );
}

/// What the Keys page's edit form sends for an emptied field: `null` through `/ui/api/key/update`
/// removes the setting (alias, models, budget and period, limits, metadata, expiry), and what
/// was removed no longer applies; a field left out stays.
#[tokio::test]
async fn the_edit_forms_nulls_clear_a_keys_settings() {
    let mock = MockProvider::start().await;
    let gateway = open(&config_for(
        &[("gpt", &mock.v1_url()), ("claude", &mock.v1_url())],
        Some(MASTER),
    ))
    .await;
    let gw = TestGateway::serve(gateway).await;
    let admin = gw.handle().with_key(MASTER);
    let made = admin
        .post(
            "/key/generate",
            &json!({"key_alias": "edit-me", "models": ["gpt"], "max_budget": 5, "budget_duration": "30d",
                    "duration": "30d", "rpm_limit": 10, "tpm_limit": 1000, "max_parallel_requests": 2,
                    "metadata": {"team": "x"}, "tags": ["keep"]}),
        )
        .await
        .json();
    let secret = made["key"].as_str().unwrap().to_owned();
    let user = gw.handle().with_key(&secret);
    user.chat("claude", "hi").await.openai_error(403);

    let (cookie, csrf) = session(&gw).await;
    let cleared = [
        "key_alias",
        "models",
        "max_budget",
        "budget_duration",
        "duration",
        "rpm_limit",
        "tpm_limit",
        "max_parallel_requests",
        "metadata",
    ];
    let mut body = serde_json::Map::new();
    body.insert("key".into(), secret.clone().into());
    for f in cleared {
        body.insert(f.into(), serde_json::Value::Null);
    }
    let headers = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/json"),
        ("x-csrf-token", csrf.as_str()),
    ];
    let res = gw
        .send(
            Method::POST,
            "/ui/api/key/update",
            serde_json::Value::Object(body).to_string(),
            &headers,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let info = admin.get(&format!("/key/info?key={secret}")).await.json()["info"].clone();
    for f in [
        "key_alias",
        "max_budget",
        "budget_duration",
        "budget_reset_at",
        "expires",
        "rpm_limit",
        "tpm_limit",
        "max_parallel_requests",
    ] {
        assert_eq!(info[f], serde_json::Value::Null, "{f}");
    }
    assert_eq!(
        (info["models"].clone(), info["metadata"].clone()),
        (json!([]), json!({}))
    );
    assert_eq!(info["tags"], json!(["keep"]), "a field left out stays");
    assert_eq!(
        user.chat("claude", "hi").await.status,
        StatusCode::OK,
        "every model now"
    );
}
