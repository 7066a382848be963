//! The UI's service: pages, assets, sign-in, and `/ui/api/*`, which answers the UI's own JSON
//! (`/ui/api/deployments`, `/ui/api/config`) and passes every other path to the admin API as
//! the master key.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use llmgate_core::{
    body, ApiError, BoxBody, BoxError, ErrorType, Origin, Secret, SignedIn, UserRole,
};
use serde_json::Value;
use subtle::ConstantTimeEq;
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

use super::assets;
use super::pages::{self, Page};
use super::session::{self, Sessions};
use super::{ConfigView, DeploymentView};

/// The UI's JSON API prefix: `/ui/api/key/list` is `/key/list` for a signed-in session.
pub(crate) const API_PREFIX: &str = "/ui/api";
/// The header a signed-in page sends its CSRF token in, on every call that is not a GET.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The sign-in form's largest body.
const LOGIN_BODY_MAX: usize = 4096;

const APP_CSS: &str = include_str!("assets/app.css");

/// What the admin API answers: the service `/ui/api/*` passes calls to.
pub type Inner<B> = BoxCloneSyncService<Request<B>, Response<BoxBody>, BoxError>;

#[derive(Clone)]
pub(crate) struct Ui {
    pub(crate) master: Option<Secret>,
    /// The users who may sign in with a password.
    pub(crate) users: Option<crate::UserAdmin>,
    /// `UI_USERNAME` and `UI_PASSWORD`: the administrator's password sign-in.
    pub(crate) admin_login: Option<(String, Secret)>,
    pub(crate) sessions: Sessions,
    pub(crate) deployments: Option<Arc<dyn DeploymentView>>,
    pub(crate) config: Option<Arc<dyn ConfigView>>,
}

/// Who is calling `/ui/api/*`.
enum Caller {
    /// A session's page, with the session's CSRF token and who signed in.
    Session(String, SignedIn),
    /// A script with the master key in `Authorization`.
    MasterKey,
}

impl Ui {
    pub(crate) async fn handle<B>(&self, req: Request<B>, inner: Inner<B>) -> Response<BoxBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        match (&method, path.as_str()) {
            (&Method::GET, p) if assets::script(p).is_some() => asset(
                assets::script(p).unwrap_or_default(),
                "text/javascript; charset=utf-8",
            ),
            (&Method::GET, "/ui/assets/app.css") => asset(APP_CSS, "text/css; charset=utf-8"),
            (&Method::GET, "/ui/login") => html(StatusCode::OK, pages::login(None)),
            (&Method::POST, "/ui/login") => self.login(req).await,
            (&Method::POST, "/ui/logout") => self.logout(req.headers()),
            (_, p) if p == API_PREFIX || p.starts_with("/ui/api/") => self.api(req, inner).await,
            (&Method::GET, p) => match Page::at(p) {
                Some(page) => {
                    match session::cookie_id(req.headers()).and_then(|id| self.sessions.csrf(id)) {
                        Some((csrf, who)) if page.open_to(who.role) => {
                            html(StatusCode::OK, page.render(&csrf, &who))
                        }
                        // An internal user lands on their keys.
                        Some(_) if page == Page::Overview => redirect("/ui/keys"),
                        Some(_) => error(
                            StatusCode::FORBIDDEN,
                            "insufficient_role",
                            format!("your role may not open {p}"),
                        ),
                        None => redirect("/ui/login"),
                    }
                }
                None => error(StatusCode::NOT_FOUND, "not_found", format!("no page {p}")),
            },
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("method {method} is not allowed on {path}"),
            ),
        }
    }

    /// `POST /ui/login` with `key=<master key>`, or `username` and `password` (a user's, or
    /// `UI_USERNAME` and `UI_PASSWORD`): opens a session and sets its cookie.
    async fn login<B>(&self, req: Request<B>) -> Response<BoxBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let secure = over_tls(&req);
        let Some(master) = &self.master else {
            return html(
                StatusCode::FORBIDDEN,
                pages::login(Some("This gateway has no master key (general_settings.master_key), so nobody can sign in.")),
            );
        };
        let form = match Limited::new(req.into_body(), LOGIN_BODY_MAX)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return html(
                    StatusCode::BAD_REQUEST,
                    pages::login(Some("The form could not be read.")),
                )
            }
        };
        let field = |name: &str| {
            form_urlencoded::parse(&form)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let key = field("key");
        let who = if key.is_empty() {
            match self
                .password_login(&field("username"), &field("password"))
                .await
            {
                Ok(who) => who,
                Err(res) => return *res,
            }
        } else if same(&key, master) {
            SignedIn {
                user_id: None,
                role: UserRole::ProxyAdmin,
                name: "admin".into(),
            }
        } else {
            return html(
                StatusCode::UNAUTHORIZED,
                pages::login(Some("That is not the master key. A virtual key cannot sign in here; sign in with your user name and password.")),
            );
        };
        let Some((id, _csrf)) = self.sessions.open(who) else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no_randomness",
                "could not make a session id".into(),
            );
        };
        let mut res = redirect("/ui/");
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, secure)) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
        res
    }

    /// Who signs in with `name` and `password`: `UI_USERNAME` (a proxy admin), else a user
    /// by id or e-mail with that password.
    async fn password_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<SignedIn, Box<Response<BoxBody>>> {
        let refused = || {
            Box::new(html(
                StatusCode::UNAUTHORIZED,
                pages::login(Some("That user name and password do not match.")),
            ))
        };
        if name.is_empty() || password.is_empty() {
            return Err(refused());
        }
        if let Some((admin, admin_password)) = &self.admin_login {
            if name == admin {
                return if same(password, admin_password) {
                    Ok(SignedIn {
                        user_id: None,
                        role: UserRole::ProxyAdmin,
                        name: admin.clone(),
                    })
                } else {
                    Err(refused())
                };
            }
        }
        let user = match &self.users {
            Some(users) => users.by_login(name).await.map_err(|e| {
                Box::new(html(
                    StatusCode::SERVICE_UNAVAILABLE,
                    pages::login(Some(&format!("Users could not be read: {}", e.message()))),
                ))
            })?,
            None => None,
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        // One Argon2id check whatever the case (no user and no password check a fixed hash),
        // so the time taken does not tell whether the name exists.
        let matches = crate::users::password::verify(password, hash);
        match user {
            Some(u) if matches => Ok(SignedIn {
                name: u
                    .user_email
                    .clone()
                    .or_else(|| u.user_alias.clone())
                    .unwrap_or_else(|| u.user_id.clone()),
                user_id: Some(u.user_id),
                role: u.user_role,
            }),
            _ => Err(refused()),
        }
    }

    /// `POST /ui/logout`: ends the session (CSRF-checked, so another site cannot sign you out).
    fn logout(&self, headers: &HeaderMap) -> Response<BoxBody> {
        if let Some(id) = session::cookie_id(headers) {
            if let Some((csrf, _)) = self.sessions.csrf(id) {
                if !csrf_ok(headers, &csrf) {
                    return csrf_refused();
                }
                self.sessions.close(id);
            }
        }
        let mut res = redirect("/ui/login");
        if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
        res
    }

    /// `/ui/api/*`: the caller must be a session (with the CSRF token unless it only reads) or
    /// the master key.
    async fn api<B>(&self, mut req: Request<B>, inner: Inner<B>) -> Response<BoxBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let Some(master) = self.master.clone() else {
            return error(
                StatusCode::FORBIDDEN,
                "master_key_required",
                "this gateway has no master key, so the UI's API answers nobody".into(),
            );
        };
        let caller = match self.caller(req.headers(), &master) {
            Ok(c) => c,
            Err(res) => return *res,
        };
        let reads = matches!(*req.method(), Method::GET | Method::HEAD);
        let mut who = None;
        if let Caller::Session(csrf, signed_in) = caller {
            if !reads && !csrf_ok(req.headers(), &csrf) {
                return csrf_refused();
            }
            who = Some(signed_in);
        }
        let path = req.uri().path().to_owned();
        let rest = &path[API_PREFIX.len()..];
        match (rest, reads) {
            ("/deployments", true) => {
                return json(self.deployments.as_ref().map(|d| d.deployments()))
            }
            ("/alerting/recent", _) if who.as_ref().is_some_and(|w| !w.role.sees_all()) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "insufficient_role",
                    "the alerts are for proxy admins and proxy admin viewers".into(),
                )
            }
            ("/config", true) if who.as_ref().is_none_or(|w| w.role.sees_all()) => {
                return json(self.config.as_ref().map(|c| c.config()))
            }
            ("/config", true) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "insufficient_role",
                    "the config is for proxy admins and proxy admin viewers".into(),
                )
            }
            _ => {}
        }
        // Any other path is the admin API's, called as the master key.
        let target = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        };
        let Ok(uri) = target.parse() else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_path",
                format!("{target} is not a path"),
            );
        };
        *req.uri_mut() = uri;
        // The admin API answers as the signed-in user's role allows (see `access.rs`).
        if let Some(who) = who {
            req.extensions_mut().insert(who);
        }
        let headers = req.headers_mut();
        headers.remove(header::COOKIE);
        headers.remove(CSRF_HEADER);
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", master.expose())) {
            headers.insert(header::AUTHORIZATION, v);
        }
        match inner.oneshot(req).await {
            Ok(res) => res,
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                e.to_string(),
            ),
        }
    }

    /// The caller of `/ui/api/*`, or the answer that refuses it.
    fn caller(
        &self,
        headers: &HeaderMap,
        master: &Secret,
    ) -> Result<Caller, Box<Response<BoxBody>>> {
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let bearer = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if same(bearer.trim(), master) {
                return Ok(Caller::MasterKey);
            }
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "master_key_required",
                "the UI's API answers the master key only".into(),
            )));
        }
        match session::cookie_id(headers).and_then(|id| self.sessions.csrf(id)) {
            Some((csrf, who)) => Ok(Caller::Session(csrf, who)),
            None => Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "not_signed_in",
                "sign in at /ui/login, or send the master key as a bearer token".into(),
            ))),
        }
    }
}

/// Constant-time comparison with the master key.
fn same(given: &str, master: &Secret) -> bool {
    let want = master.expose().as_bytes();
    given.len() == want.len() && bool::from(given.as_bytes().ct_eq(want))
}

fn csrf_ok(headers: &HeaderMap, csrf: &str) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() == csrf.len() && bool::from(v.as_bytes().ct_eq(csrf.as_bytes())))
}

fn csrf_refused() -> Response<BoxBody> {
    error(StatusCode::FORBIDDEN, "csrf_token_invalid", format!("a signed-in call that changes something must carry the page's CSRF token in {CSRF_HEADER}"))
}

/// Whether the request came over TLS: an `https` URI, or `X-Forwarded-Proto: https` from a
/// proxy that ends TLS in front of the gateway.
fn over_tls<B>(req: &Request<B>) -> bool {
    req.uri().scheme_str() == Some("https")
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn with_headers(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<BoxBody> {
    let mut res = Response::new(body::full(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

fn html(status: StatusCode, page: String) -> Response<BoxBody> {
    let mut res = with_headers(status, "text/html; charset=utf-8", Bytes::from(page));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn asset(text: &'static str, content_type: &'static str) -> Response<BoxBody> {
    let mut res = with_headers(
        StatusCode::OK,
        content_type,
        Bytes::from_static(text.as_bytes()),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn redirect(to: &'static str) -> Response<BoxBody> {
    let mut res = with_headers(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Bytes::new(),
    );
    res.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    res
}

fn json(value: Option<Value>) -> Response<BoxBody> {
    match value {
        Some(v) => with_headers(
            StatusCode::OK,
            "application/json",
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "not_available",
            "this gateway does not provide this view".into(),
        ),
    }
}

fn error(status: StatusCode, code: &'static str, message: String) -> Response<BoxBody> {
    let ty = match status {
        StatusCode::UNAUTHORIZED => ErrorType::AUTHENTICATION,
        StatusCode::FORBIDDEN => ErrorType::PERMISSION,
        StatusCode::NOT_FOUND => ErrorType::NOT_FOUND,
        _ => ErrorType::INVALID_REQUEST,
    };
    ApiError::new(status, Origin::Downstream, message)
        .with_type(ty)
        .with_code(code)
        .to_response()
}
