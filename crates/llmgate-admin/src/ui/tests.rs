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
