use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use llmgate_core::{body, BoxBody, BoxError, Secret};
use tower::util::BoxCloneSyncService;
use tower::{service_fn, ServiceExt};

use super::{Inner, Sessions, UiApi, CSRF_HEADER};

/// A stand-in admin API that echoes the path, query and `Authorization` it was called with.
fn echo() -> Inner<String> {
    BoxCloneSyncService::new(service_fn(|req: Request<String>| async move {
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let cookie = req.headers().get(header::COOKIE).is_some();
        let v = serde_json::json!({"uri": req.uri().to_string(), "auth": auth, "cookie": cookie});
        Ok::<_, BoxError>(Response::new(body::full(v.to_string())))
    }))
}

fn ui() -> Inner<String> {
    UiApi::new(Some(Secret::new("sk-master")), Sessions::new()).service(echo())
}

async fn send(
    ui: &Inner<String>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res: Response<BoxBody> = ui
        .clone()
        .oneshot(req.body(body.to_owned()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// Signs in; the cookie header to send and the page's CSRF token.
async fn sign_in(ui: &Inner<String>) -> (String, String) {
    let (status, headers, _) = send(ui, Method::POST, "/ui/login", &[FORM], "key=sk-master").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("sk-master"));
    let cookie = set.split(';').next().unwrap().to_owned();
    let (status, _, page) = send(ui, Method::GET, "/ui/keys", &[("cookie", &cookie)], "").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = page
        .split("<meta name=\"csrf\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn only_the_master_key_signs_in() {
    let ui = ui();
    for key in ["sk-virtual-key", "", "sk-maste"] {
        let (status, headers, page) = send(
            &ui,
            Method::POST,
            "/ui/login",
            &[FORM],
            &format!("key={key}"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.get(header::SET_COOKIE).is_none());
        // An empty key is a password sign-in without a name.
        let said = if key.is_empty() {
            "do not match"
        } else {
            "not the master key"
        };
        assert!(page.contains(said), "{page}");
    }
    let (status, headers, _) = send(
        &ui,
        Method::POST,
        "/ui/login",
        &[FORM, ("x-forwarded-proto", "https")],
        "key=sk-master",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .ends_with("; Secure"));
    // Without a master key nobody signs in.
    let closed = UiApi::new(None, Sessions::new()).service(echo());
    let (status, _, _) = send(&closed, Method::POST, "/ui/login", &[FORM], "key=x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_session_calls_the_admin_api_as_the_master_key_with_its_csrf_token() {
    let ui = ui();
    let (status, _, _) = send(&ui, Method::GET, "/ui/api/key/list", &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (cookie, csrf) = sign_in(&ui).await;
    let c = ("cookie", cookie.as_str());
    let (status, _, body) = send(&ui, Method::GET, "/ui/api/key/list?size=5", &[c], "").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["uri"], "/key/list?size=5");
    assert_eq!(v["auth"], "Bearer sk-master");
    assert_eq!(v["cookie"], false);
    // A call that changes something needs the session's CSRF token.
    let (status, _, body) = send(&ui, Method::POST, "/ui/api/key/block", &[c], "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("csrf_token_invalid"));
    let (status, _, _) = send(
        &ui,
        Method::POST,
        "/ui/api/key/block",
        &[c, (CSRF_HEADER, "wrong")],
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &ui,
        Method::POST,
        "/ui/api/key/block",
        &[c, (CSRF_HEADER, &csrf)],
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Signing out ends the session.
    let (status, _, _) = send(
        &ui,
        Method::POST,
        "/ui/logout",
        &[c, (CSRF_HEADER, &csrf)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(&ui, Method::GET, "/ui/api/key/list", &[c], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_script_uses_the_master_key_and_a_virtual_key_sees_nothing() {
    let ui = ui();
    let (status, _, _) = send(
        &ui,
        Method::POST,
        "/ui/api/key/block",
        &[("authorization", "Bearer sk-master")],
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(
        &ui,
        Method::GET,
        "/ui/api/key/list",
        &[("authorization", "Bearer sk-virtual")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("master_key_required"));
    // Pages without a session go to the sign-in form; the assets are public.
    let (status, headers, _) = send(&ui, Method::GET, "/ui/", &[], "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/ui/login");
    let (cookie, _) = sign_in(&ui).await;
    let (_, headers, _) = send(&ui, Method::GET, "/ui/", &[("cookie", &cookie)], "").await;
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let (status, headers, _) = send(&ui, Method::GET, "/ui/assets/app.js", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let (status, _, _) = send(
        &ui,
        Method::GET,
        "/ui/api/deployments",
        &[("authorization", "Bearer sk-master")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_teams_and_end_users_pages_load_every_script() {
    let ui = ui();
    // Without a session the new pages go to sign-in, as the others do.
    for page in ["/ui/teams", "/ui/end-users"] {
        let (status, headers, _) = send(&ui, Method::GET, page, &[], "").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(headers[header::LOCATION], "/ui/login");
    }
    // The scripts are public, as JavaScript, each with its pages.
    for (path, registers) in [
        ("/ui/assets/app.js", "const pages = {"),
        ("/ui/assets/spend.js", "pages.spend = spend;"),
        ("/ui/assets/teams.js", "pages[\"end-users\"] = endUsers;"),
    ] {
        let (status, headers, js) = send(&ui, Method::GET, path, &[], "").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert!(js.contains(registers), "{path}");
    }
    assert_eq!(super::assets::paths().count(), 3);
    let (status, _, _) = send(&ui, Method::GET, "/ui/assets/nope.js", &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Signed in, each page is its skeleton and loads every script, app.js first.
    let (cookie, _) = sign_in(&ui).await;
    for (page, table) in [
        ("/ui/teams", "<table id=\"teams\">"),
        ("/ui/end-users", "<table id=\"customers\">"),
        ("/ui/spend", "<table id=\"report\">"),
    ] {
        let (status, _, html) = send(&ui, Method::GET, page, &[("cookie", &cookie)], "").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(html.contains(table), "{page}");
        let at = |s: &str| {
            html.find(&format!("<script src=\"{s}\"></script>"))
                .unwrap()
        };
        assert!(at("/ui/assets/app.js") < at("/ui/assets/spend.js"));
        assert!(at("/ui/assets/spend.js") < at("/ui/assets/teams.js"));
    }
}

#[tokio::test]
async fn the_teams_end_users_and_report_calls_reach_the_admin_api() {
    let ui = ui();
    let (cookie, csrf) = sign_in(&ui).await;
    let c = ("cookie", cookie.as_str());
    let t = (CSRF_HEADER, csrf.as_str());
    for (method, path, want) in [
        (Method::GET, "/ui/api/team/list", "/team/list"),
        (Method::GET, "/ui/api/key/list?size=1&team_id=t%201", "/key/list?size=1&team_id=t%201"),
        (Method::POST, "/ui/api/team/member_add", "/team/member_add"),
        (Method::POST, "/ui/api/customer/block", "/customer/block"),
        (
            Method::GET,
            "/ui/api/global/spend/report?group_by=customer&start_date=2026-11-01&end_date=2026-12-01",
            "/global/spend/report?group_by=customer&start_date=2026-11-01&end_date=2026-12-01",
        ),
    ] {
        // A change without the page's CSRF token is refused before it reaches the API.
        if method == Method::POST {
            let (status, _, _) = send(&ui, method.clone(), path, &[c], "{}").await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        let (status, _, body) = send(&ui, method, path, &[c, t], "{}").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["uri"], want);
        assert_eq!(v["auth"], "Bearer sk-master");
    }
}
