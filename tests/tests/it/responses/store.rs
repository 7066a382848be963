//! Stored responses through the gateway: `previous_response_id`, `GET`/`DELETE`, the input
//! items, scoping to the calling key, and each store (memory, SQLite, PostgreSQL).

use super::*;

#[tokio::test]
async fn previous_response_id_get_and_delete() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    let first = post(&gw, &json!({"model": "gpt", "input": "my name is Ann"}))
        .await
        .json();
    let id = first["id"].as_str().unwrap();

    // A streamed follow-up: the stored turn is sent before the new input.
    let ev = events(
        &gw,
        &json!({"model": "gpt", "previous_response_id": id, "input": "what is my name?",
        "stream": true}),
    )
    .await;
    let second = ev.last().unwrap().1["response"].clone();
    assert_eq!(second["previous_response_id"], id);
    let sent = mock.last_request().unwrap().json;
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "my name is Ann"},
            {"role": "assistant", "content": "mock reply to: my name is Ann"},
            {"role": "user", "content": "what is my name?"}])
    );
    // The chain goes on: the third turn sees both earlier ones.
    post(
        &gw,
        &json!({"model": "gpt", "previous_response_id": second["id"], "input": "thanks"}),
    )
    .await;
    let sent = mock.last_request().unwrap().json;
    assert_eq!(sent["messages"].as_array().unwrap().len(), 5);

    // GET answers the stored object; DELETE removes it.
    let got = gw.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json(), first);
    conformance::response(&got.json());
    let got = gw
        .get(&format!("/responses/{}", second["id"].as_str().unwrap()))
        .await;
    assert_eq!(got.json(), second);
    let del = gw
        .send(Method::DELETE, &format!("/v1/responses/{id}"), "", &[])
        .await;
    assert_eq!(del.status, 200, "{}", del.text());
    assert_eq!(
        del.json(),
        json!({"id": id, "object": "response", "deleted": true})
    );
    gw.get(&format!("/v1/responses/{id}"))
        .await
        .openai_error(404);
    let gone = post(
        &gw,
        &json!({"model": "gpt", "previous_response_id": id, "input": "x"}),
    )
    .await;
    let e = gone.openai_error(400);
    assert_eq!(e["code"], "previous_response_not_found");
    assert_eq!(e["param"], "previous_response_id");

    // store: false keeps nothing.
    let unstored = post(&gw, &json!({"model": "gpt", "input": "x", "store": false}))
        .await
        .json();
    assert_eq!(unstored["store"], false);
    gw.get(&format!(
        "/v1/responses/{}",
        unstored["id"].as_str().unwrap()
    ))
    .await
    .openai_error(404);

    // Without the key: 401, before the store is asked.
    let anonymous = TestGateway::start(&openai(&mock)).await;
    anonymous
        .get(&format!("/v1/responses/{}", second["id"].as_str().unwrap()))
        .await
        .openai_error(401);
}

/// The SQL store (SQLite here; PostgreSQL below) behind the gateway: a conversation continues
/// across requests, and another key neither finds nor deletes it.
#[tokio::test]
async fn stored_in_sqlite_and_scoped_to_the_calling_key() {
    let mock = MockProvider::start().await;
    let db = std::env::temp_dir().join(format!(
        "llmgate-responses-{}.db",
        llmgate::auth::generate_secret()[3..15].to_ascii_lowercase()
    ));
    let yaml = format!(
        "{}  database_url: sqlite://{}\n",
        openai(&mock),
        db.display()
    );
    let loaded =
        llmgate_config::from_yaml(&yaml, Path::new("."), &HashMap::<String, String>::new())
            .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let gateway = llmgate::Gateway::open(loaded.config).await.unwrap();
    let gw = TestGateway::serve(gateway.clone()).await;
    let master = gw.handle().with_key(KEY);
    let key = master.post("/key/generate", &json!({})).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = gw.handle().with_key(&key);

    let first = post(&user, &json!({"model": "gpt", "input": "my name is Ann"}))
        .await
        .json();
    let id = first["id"].as_str().unwrap();
    let second = post(
        &user,
        &json!({"model": "gpt", "previous_response_id": id, "input": "name?"}),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        mock.last_request().unwrap().json["messages"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(user.get(&format!("/v1/responses/{id}")).await.json(), first);

    // The master key is another caller: it finds nothing of the key's.
    master
        .get(&format!("/v1/responses/{id}"))
        .await
        .openai_error(404);
    assert_eq!(
        master
            .send(Method::DELETE, &format!("/v1/responses/{id}"), "", &[])
            .await
            .status,
        404
    );
    post(
        &master,
        &json!({"model": "gpt", "previous_response_id": id, "input": "x"}),
    )
    .await
    .openai_error(400);
    // It is in the database, not in memory: a new gateway on the same file finds it.
    drop(gw);
    gateway.shutdown().await;
    let loaded =
        llmgate_config::from_yaml(&yaml, Path::new("."), &HashMap::<String, String>::new())
            .unwrap();
    let gateway = llmgate::Gateway::open(loaded.config).await.unwrap();
    let gw = TestGateway::serve(gateway.clone()).await.with_key(&key);
    assert_eq!(gw.get(&format!("/v1/responses/{id}")).await.json(), first);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// One test body for each store: memory, SQLite, PostgreSQL (skipped when unreachable).
#[tokio::test]
async fn every_store_saves_loads_and_deletes_by_owner() {
    use llmgate::responses::{MemoryStore, ResponseStore, StoredResponse};
    let mut stores: Vec<(String, Arc<dyn ResponseStore>)> = vec![
        ("memory".into(), Arc::new(MemoryStore::new())),
        (
            "sqlite".into(),
            Arc::new(
                llmgate_store::Store::open("sqlite::memory:", &llmgate_store::StoreOptions::new())
                    .await
                    .unwrap(),
            ),
        ),
    ];
    if let Some(url) = llmgate_tests::postgres_url().await {
        stores.push((
            "postgres".into(),
            Arc::new(
                llmgate_store::Store::open(&url, &llmgate_store::StoreOptions::new())
                    .await
                    .unwrap(),
            ),
        ));
    }
    for (name, store) in stores {
        let id = format!(
            "resp_test_{}",
            llmgate::auth::generate_secret()[3..15].to_ascii_lowercase()
        );
        let mut r = StoredResponse {
            id: id.clone(),
            owner: "owner-a".into(),
            created_at: 7,
            input: vec![json!({"type": "message", "role": "user", "content": "hi"})],
            response: json!({"id": id, "output": [{"type": "message", "role": "assistant", "content": []}]}),
        };
        store.save(&r).await.unwrap();
        assert_eq!(
            store.load("owner-a", &id).await.unwrap().as_ref(),
            Some(&r),
            "{name}"
        );
        assert_eq!(store.load("owner-b", &id).await.unwrap(), None, "{name}");
        r.created_at = 8;
        store.save(&r).await.unwrap();
        assert_eq!(
            store
                .load("owner-a", &id)
                .await
                .unwrap()
                .unwrap()
                .created_at,
            8,
            "{name}"
        );
        assert!(!store.delete("owner-b", &id).await.unwrap(), "{name}");
        assert!(store.delete("owner-a", &id).await.unwrap(), "{name}");
        assert_eq!(store.load("owner-a", &id).await.unwrap(), None, "{name}");
    }
}

/// `GET /v1/responses/{id}/input_items`: the conversation that led to a response, earlier turns
/// first when asked `order=asc`, each item with an id.
#[tokio::test]
async fn input_items_list_the_conversation() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    let first = post(&gw, &json!({"model": "gpt", "input": "my name is Ann"}))
        .await
        .json();
    let second = post(
        &gw,
        &json!({"model": "gpt", "previous_response_id": first["id"],
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "my name?"}]}]}),
    )
    .await
    .json();
    let path = format!(
        "/v1/responses/{}/input_items",
        second["id"].as_str().unwrap()
    );
    let list = gw.get(&format!("{path}?order=asc")).await;
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json();
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{list}");
    assert_eq!(
        data[0]["content"],
        json!([{"type": "input_text", "text": "my name is Ann"}])
    );
    assert_eq!(
        data[1], first["output"][0],
        "the first turn's output, as answered"
    );
    assert_eq!(data[2]["content"][0]["text"], "my name?");
    for item in data {
        assert!(
            item["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{item}"
        );
        assert_eq!(item["type"], "message");
        assert_eq!(item["status"], "completed");
    }
    assert_eq!(list["first_id"], data[0]["id"]);
    assert_eq!(list["last_id"], data[2]["id"]);
    // Newest first by default; a page of one says there is more.
    let page = gw.get(&format!("{path}?limit=1")).await.json();
    assert_eq!(page["data"][0]["id"], data[2]["id"]);
    assert_eq!(page["has_more"], true);
    assert_eq!(gw.send(Method::DELETE, &path, "", &[]).await.status, 405);
    // Without a key: 401.
    let anonymous = TestGateway::start(&openai(&mock)).await;
    anonymous.get(&path).await.openai_error(401);
}

/// A log writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The SQL store failing (its table dropped under the running gateway): a new response is
/// still answered, streamed and not, and the failure to save it is logged; a follow-up whose
/// `previous_response_id` cannot be loaded is a 503.
#[tokio::test]
async fn a_store_failure_is_logged_when_saving_and_a_503_when_loading() {
    use sqlx::{Connection, Executor};
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = Captured::default();
    let writer = logs.clone();
    let _guard = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();
    tracing::callsite::rebuild_interest_cache();
    let mock = MockProvider::start().await;
    let db = llmgate_tests::TempDb::new("responses-failing");
    let yaml = format!("{}  database_url: {}\n", openai(&mock), db.url());
    let loaded =
        llmgate_config::from_yaml(&yaml, Path::new("."), &HashMap::<String, String>::new())
            .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let gateway = llmgate::Gateway::open(loaded.config).await.unwrap();
    let gw = TestGateway::serve(gateway).await.with_key(KEY);
    let first = post(&gw, &json!({"model": "gpt", "input": "one"})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_owned();

    let mut conn = sqlx::SqliteConnection::connect(&db.url()).await.unwrap();
    conn.execute("DROP TABLE llmgate_responses").await.unwrap();
    let logged = || String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logged().contains("could not be stored"), "{}", logged());

    let second = post(&gw, &json!({"model": "gpt", "input": "two"})).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(text_of(&second.json()), "mock reply to: two");
    let ev = events(
        &gw,
        &json!({"model": "gpt", "input": "three", "stream": true}),
    )
    .await;
    let last = &ev.last().unwrap().1;
    assert_eq!(last["type"], "response.completed", "{last}");
    assert_eq!(text_of(&last["response"]), "mock reply to: three");
    let lines = logged();
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("a response could not be stored"))
            .count(),
        2,
        "{lines}"
    );

    let follow_up = post(
        &gw,
        &json!({"model": "gpt", "input": "four", "previous_response_id": id}),
    )
    .await;
    follow_up.openai_error(503);
    assert_eq!(mock.request_count(), 3, "the follow-up was not sent");
}

/// The scope is the key's secret: after `/key/regenerate` the key's new secret finds none of
/// the responses stored under the old one (404 on `GET`, 400 on `previous_response_id`).
#[tokio::test]
async fn a_regenerated_key_does_not_find_its_earlier_responses() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await;
    let master = gw.handle().with_key(KEY);
    let secret = master.post("/key/generate", &json!({})).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = gw.handle().with_key(&secret);
    let first = post(&user, &json!({"model": "gpt", "input": "one"})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/responses/{id}");
    assert_eq!(user.get(&path).await.status, 200);

    let regen = master
        .post("/key/regenerate", &json!({"key": secret}))
        .await;
    assert_eq!(regen.status, 200, "{}", regen.text());
    let renewed = gw.handle().with_key(regen.json()["key"].as_str().unwrap());
    assert_eq!(renewed.chat("gpt", "hi").await.status, 200, "the key works");
    renewed.get(&path).await.openai_error(404);
    let e = post(
        &renewed,
        &json!({"model": "gpt", "input": "two", "previous_response_id": id}),
    )
    .await
    .openai_error(400);
    assert_eq!(e["code"], "previous_response_not_found");
}
