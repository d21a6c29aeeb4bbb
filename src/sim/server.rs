//! HTTP: routes, authentication, the faults and limits set by flags, request counting.

use super::store::{Object, SimError, View, hide, parse_body};
use super::{Call, Fault, Shared};
use crate::model::Region;
use crate::sinch::SENSITIVE;
use crate::sinch::settings::IdentityConflict;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

type Sim = State<Arc<Shared>>;

const MAX_BODY: usize = 16 << 20;
type Answer = Result<Value, SimError>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(
            "/{region}/v1/projects/{project_id}/apps",
            get(list_apps).post(create_app),
        )
        .route(
            "/{region}/v1/projects/{project_id}/apps/{app_id}",
            get(get_app).patch(update_app).delete(delete_app),
        )
        .route(
            "/{region}/v1/projects/{project_id}/apps/{app_id}/webhooks",
            get(list_webhooks),
        )
        .route("/{region}/v1/projects/{project_id}/webhooks", post(create_webhook))
        .route(
            "/{region}/v1/projects/{project_id}/webhooks/{webhook_id}",
            get(get_webhook).patch(update_webhook).delete(delete_webhook),
        )
        .route(
            "/{region}/v1/projects/{project_id}/settings",
            get(get_settings)
                .post(create_settings)
                .patch(update_settings)
                .delete(delete_settings),
        )
        .route(
            "/{region}/v1/projects/{project_id}/contacts:identityConflicts",
            get(list_identity_conflicts),
        )
        .route(
            "/{region}/v2/projects/{project_id}/templates",
            get(list_templates).post(create_template),
        )
        .route(
            "/{region}/v2/projects/{project_id}/templates/{template_id}",
            get(get_template).put(replace_template).delete(delete_template),
        )
        .route(
            "/{region}/v2/projects/{project_id}/templates/{template_id}/translations",
            get(list_translations),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate));
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/_sim/stats", get(stats).delete(reset_stats))
        .route("/_sim/requests", get(journal))
        .route("/_sim/faults", post(inject))
        .route("/_sim/expire-tokens", post(expire_tokens))
        .route(
            "/_sim/{region}/projects/{project_id}/identity-conflicts",
            put(seed_identity_conflicts),
        )
        .merge(api)
        .fallback(|| async { error(SimError::not_found("no such route")) })
        .with_state(shared)
}

fn error(e: SimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let details = match e.violations.as_slice() {
        [] => json!([]),
        violations => {
            let field_violations: Vec<Value> = violations
                .iter()
                .map(|v| json!({ "field": v.field, "description": v.description }))
                .collect();
            json!([{ "@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": field_violations }])
        }
    };
    let body = json!({ "error": { "code": e.status, "message": e.message, "status": e.code, "details": details } });
    (status, axum::Json(body)).into_response()
}

fn answer(result: Answer) -> Response {
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => error(e),
    }
}

fn code_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    }
}

fn failure(status: u16, retry_after: Option<u64>, message: Option<String>) -> Response {
    let message = message.unwrap_or_else(|| match status {
        429 => "rate limit exceeded".to_string(),
        s if s >= 500 => "the service failed; retry with exponential back-off".to_string(),
        s => format!("injected failure {s}"),
    });
    let mut response = error(SimError::new(status, code_name(status), message));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn unauthenticated(message: &str, challenge: &'static str) -> Response {
    let mut response = error(SimError::new(401, "UNAUTHENTICATED", message));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// Everything that happens to an API request around its handler, in the order the real service
/// would: count, latency, rate limit, failures, authentication; then the state file.
async fn gate(State(sim): Sim, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let described = format!("{method} {}", request.uri().path());
    let is_write = method != axum::http::Method::GET;
    let write = sim.count(format!("{method} {route}"), is_write);
    if is_write {
        sim.held(write).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(SimError::invalid("the request body is too large"));
    };
    sim.record(Call {
        method: method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(String::from),
        body: serde_json::from_slice(&body).ok(),
    });
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    let config = &sim.config;
    let mut delay = config.latency;
    if chance(config.spike_rate) {
        sim.count_fault("spike");
        delay += config.spike_latency;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let project = project_of(request.uri().path()).to_string();
    let basic = basic(authorization(request.headers())).is_some();
    if let Some(refused) = rate_limited(&sim, &project, basic) {
        return refused;
    }
    let fault = take_fault(&sim, &described);
    if let Some(f) = fault.as_ref().filter(|f| !f.after_write) {
        sim.count_fault(&f.status.to_string());
        return failure(f.status, f.retry_after, f.message.clone());
    }
    if chance(config.failure_rate) {
        let status = if fastrand::bool() { 500 } else { 503 };
        sim.count_fault(&status.to_string());
        return failure(status, None, None);
    }
    if chance(config.echo_headers_rate) {
        sim.count_fault("502");
        return headers_echoed(request.headers());
    }
    // Decided before the request is carried out, so that the share holds whatever it answers.
    let drop = chance(config.drop_rate).then(fastrand::bool);
    if drop == Some(false) {
        sim.count_fault("dropped");
        return dropped();
    }
    match authenticate(&sim, request.headers()) {
        Err((message, challenge)) => return unauthenticated(message, challenge),
        Ok(key) if !key_may_use(&sim, &key, &project) => {
            return error(SimError::new(
                403,
                "PERMISSION_DENIED",
                "the provided client_id and client_secret are not associated with the project_id",
            ));
        }
        Ok(_) => {}
    }
    let response = next.run(request).await;
    if is_write && response.status().is_success() {
        sim.save();
    }
    if drop == Some(true) {
        sim.count_fault("dropped");
        return dropped();
    }
    match fault {
        Some(f) => {
            sim.count_fault(&f.status.to_string());
            failure(f.status, f.retry_after, f.message)
        }
        None => {
            // Counted for the benchmarks: what a reader downloads grows with what it lists.
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            sim.count_bytes(body.len());
            Response::from_parts(parts, axum::body::Body::from(body))
        }
    }
}

/// The project segment of an API path: `/{region}/v1/projects/{project_id}/...`.
fn project_of(path: &str) -> &str {
    path.split('/').nth(4).unwrap_or_default()
}

/// A 429 with its Retry-After when the project's requests per second are spent, or with HTTP
/// Basic its Basic requests per second too, or while a throttle window is open.
fn rate_limited(sim: &Shared, project: &str, basic: bool) -> Option<Response> {
    let limits = [
        (sim.config.rate_limit, project.to_string()),
        (
            sim.config.basic_rate_limit.filter(|_| basic),
            format!("{project} (basic)"),
        ),
    ];
    for (limit, key) in limits {
        let Some(limit) = limit else { continue };
        let limiter = sim
            .limiters
            .lock()
            .expect("never poisoned")
            .entry(key)
            .or_insert_with(|| Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(limit))))
            .clone();
        if let Err(not_until) = limiter.check() {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            sim.count_fault("429");
            return Some(failure(429, Some(wait.as_secs_f64().ceil().max(1.0) as u64), None));
        }
    }
    if let Some(left) = sim.config.throttle.and_then(|t| t.remaining(sim.started.elapsed())) {
        sim.count_fault("429");
        return Some(failure(429, Some(left.as_secs_f64().ceil().max(1.0) as u64), None));
    }
    None
}

fn chance(rate: f64) -> bool {
    rate > 0.0 && fastrand::f64() < rate
}

/// What a buggy proxy in front of the API might answer: a 502 whose plain-text body quotes the
/// request's headers, `Authorization: Bearer <token>` first, so that it falls within whatever
/// part of the body a client quotes.
fn headers_echoed(headers: &HeaderMap) -> Response {
    let mut lines: Vec<(bool, String)> = headers
        .iter()
        .map(|(name, value)| {
            let name: Vec<String> = name
                .as_str()
                .split('-')
                .map(|word| {
                    let mut letters = word.chars();
                    letters.next().map_or(String::new(), |first| {
                        first.to_ascii_uppercase().to_string() + letters.as_str()
                    })
                })
                .collect();
            let line = format!("{}: {}", name.join("-"), String::from_utf8_lossy(value.as_bytes()));
            (name != ["Authorization"], line)
        })
        .collect();
    lines.sort_by_key(|(later, _)| *later);
    let mut body = String::from("502 Bad Gateway: the upstream did not answer the request\n");
    for (_, line) in lines {
        body.push_str(&line);
        body.push('\n');
    }
    (StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// A response whose body fails at once: hyper then closes the connection before the head is
/// flushed, so the client sees the connection end without an answer.
fn dropped() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by the simulator",
        ))
    });
    Response::new(axum::body::Body::from_stream(failing))
}

fn take_fault(sim: &Shared, described: &str) -> Option<Fault> {
    let mut faults = sim.faults.lock().expect("never poisoned");
    let i = faults
        .iter()
        .position(|f| f.matching.as_deref().is_none_or(|m| described.contains(m)))?;
    let fault = faults[i].clone();
    faults[i].times = faults[i].times.saturating_sub(1);
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(fault)
}

fn authorization(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Bearer tokens from the token endpoint, or HTTP Basic with the key on every call: the id of
/// the key, or `Err((message, WWW-Authenticate challenge))` when the request is refused.
fn authenticate(sim: &Shared, headers: &HeaderMap) -> Result<String, (&'static str, &'static str)> {
    let value = authorization(headers);
    if let Some(token) = value.strip_prefix("Bearer ") {
        return match sim.tokens.lock().expect("never poisoned").get(token) {
            Some((until, key)) if *until > Instant::now() => Ok(key.clone()),
            Some(_) => Err((
                "the access token expired",
                r#"Bearer error="invalid_token", error_description="The access token expired""#,
            )),
            None => Err(("the access token is not valid", r#"Bearer error="invalid_token""#)),
        };
    }
    if let Some((id, secret)) = basic(value) {
        return match key_accepted(sim, &id, &secret) {
            true => Ok(id),
            false => Err(("the access key was refused", "Basic")),
        };
    }
    Err(("the request has no credentials", "Bearer"))
}

fn basic(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// A key bound to projects (`sim --key ID:SECRET@PROJECT`) may use only those.
fn key_may_use(sim: &Shared, key: &str, project: &str) -> bool {
    sim.config
        .key_projects
        .get(key)
        .is_none_or(|projects| projects.iter().any(|p| p == project))
}

fn key_accepted(sim: &Shared, id: &str, secret: &str) -> bool {
    match sim.config.keys.is_empty() {
        true => !id.is_empty() && !secret.is_empty(),
        false => sim.config.keys.iter().any(|(i, s)| i == id && s == secret),
    }
}

/// `POST /oauth2/token`: client credentials, Basic auth, a form body.
async fn token(State(sim): Sim, headers: HeaderMap, body: Bytes) -> Response {
    let _ = sim.count("POST /oauth2/token".into(), false);
    if !sim.config.latency.is_zero() {
        tokio::time::sleep(sim.config.latency).await;
    }
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            axum::Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    let Some((key, _)) = basic(authorization(&headers)).filter(|(id, secret)| key_accepted(&sim, id, secret)) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "the access key was refused");
    };
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        );
    }
    let grant = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned());
    if grant.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use grant_type=client_credentials",
        );
    }
    let token: String = std::iter::repeat_with(fastrand::alphanumeric).take(48).collect();
    let lifetime = sim.config.token_lifetime;
    sim.tokens
        .lock()
        .expect("never poisoned")
        .insert(token.clone(), (Instant::now() + lifetime, key));
    axum::Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
        "scope": "",
    }))
    .into_response()
}

async fn stats(State(sim): Sim) -> Response {
    axum::Json(sim.stats.lock().expect("never poisoned").clone()).into_response()
}

async fn reset_stats(State(sim): Sim) -> StatusCode {
    sim.reset_stats();
    StatusCode::NO_CONTENT
}

/// The journal as it leaves the process: every secret field shown as the product shows it.
/// (Headers, the credentials among them, are not recorded.)
async fn journal(State(sim): Sim) -> Response {
    let mut journal = sim.journal();
    for body in journal.iter_mut().filter_map(|r| r.body.as_mut()) {
        for fields in crate::sinch::resources() {
            hide(body, fields.secrets, SENSITIVE);
        }
    }
    axum::Json(journal).into_response()
}

async fn inject(State(sim): Sim, axum::Json(fault): axum::Json<Fault>) -> StatusCode {
    sim.inject(fault);
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(sim): Sim) -> StatusCode {
    sim.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn seed_identity_conflicts(
    State(sim): Sim,
    Path((region, project)): Path<(String, String)>,
    axum::Json(conflicts): axum::Json<Vec<IdentityConflict>>,
) -> Response {
    let region = match region_of(&region) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    sim.seed_identity_conflicts(region, &project, conflicts);
    StatusCode::NO_CONTENT.into_response()
}

/// An unknown region is an unknown host to the real API: 404.
fn region_of(name: &str) -> Result<Region, SimError> {
    Region::from_name(name).ok_or_else(|| SimError::not_found(format!("no region {name:?}: use us, eu or br")))
}

fn view(sim: &Shared) -> View {
    View {
        mask_secrets: sim.config.mask_secrets,
        partial_mask: sim.config.variants.contains(&crate::sim::Variant::PartialMask),
        null_defaults: sim.config.variants.contains(&crate::sim::Variant::NullDefaults),
    }
}

/// `update_mask=a,b`, `update_mask=a%2Cb`, or `update_mask.paths=a&update_mask.paths=b`.
fn update_mask(query: Option<&str>) -> Option<Vec<String>> {
    let mut paths = None::<Vec<String>>;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "update_mask" || k == "update_mask.paths" {
            let list = paths.get_or_insert_default();
            list.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from));
        }
    }
    paths
}

type InProject = Path<(String, String)>;
type InObject = Path<(String, String, String)>;

async fn list_apps(State(sim): Sim, Path((r, p)): InProject) -> Response {
    answer(region_of(&r).map(|r| sim.store().list_apps(r, &p, view(&sim))))
}

async fn get_app(State(sim): Sim, Path((r, p, id)): InObject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().get_app(r, &p, &id, view(&sim))))
}

async fn create_app(State(sim): Sim, Path((r, p)): InProject, body: Bytes) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().create_app(r, &p, parse_body(&body)?, view(&sim))))
}

async fn update_app(State(sim): Sim, Path((r, p, id)): InObject, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let mask = update_mask(q.as_deref());
    let ignored = &sim.config.ignore_updates_of;
    answer(region_of(&r).and_then(|r| {
        sim.store()
            .update_app(r, &p, &id, parse_body(&body)?, mask, ignored, view(&sim))
    }))
}

async fn delete_app(State(sim): Sim, Path((r, p, id)): InObject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().delete_app(r, &p, &id)))
}

async fn list_webhooks(State(sim): Sim, Path((r, p, app)): InObject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().list_webhooks(r, &p, &app, view(&sim))))
}

async fn get_webhook(State(sim): Sim, Path((r, p, id)): InObject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().get_webhook(r, &p, &id, view(&sim))))
}

async fn create_webhook(State(sim): Sim, Path((r, p)): InProject, body: Bytes) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().create_webhook(r, &p, parse_body(&body)?, view(&sim))))
}

async fn update_webhook(State(sim): Sim, Path((r, p, id)): InObject, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let mask = update_mask(q.as_deref());
    answer(region_of(&r).and_then(|r| {
        sim.store()
            .update_webhook(r, &p, &id, parse_body(&body)?, mask, view(&sim))
    }))
}

async fn delete_webhook(State(sim): Sim, Path((r, p, id)): InObject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().delete_webhook(r, &p, &id)))
}

async fn get_settings(State(sim): Sim, Path((r, p)): InProject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().get_settings(r, &p)))
}

async fn create_settings(State(sim): Sim, Path((r, p)): InProject, body: Bytes) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().create_settings(r, &p, required_body(&body)?)))
}

async fn update_settings(State(sim): Sim, Path((r, p)): InProject, body: Bytes) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().update_settings(r, &p, required_body(&body)?)))
}

/// The settings requests' body is `required: true` in the spec: an empty one is refused.
fn required_body(body: &[u8]) -> Result<Object, SimError> {
    match body.iter().all(u8::is_ascii_whitespace) {
        true => Err(SimError::invalid(
            "the request body is required: send a ProjectSettingsRequest",
        )),
        false => parse_body(body),
    }
}

async fn delete_settings(State(sim): Sim, Path((r, p)): InProject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().delete_settings(r, &p)))
}

async fn list_identity_conflicts(
    State(sim): Sim,
    Path((r, p)): InProject,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (size, token) = (
        q.get("page_size").map(String::as_str),
        q.get("page_token").map(String::as_str),
    );
    answer(region_of(&r).and_then(|r| sim.store().list_identity_conflicts(r, &p, size, token)))
}

async fn list_templates(State(sim): Sim, Path((r, p)): InProject) -> Response {
    answer(region_of(&r).map(|r| sim.store().list_templates(r, &p)))
}

async fn get_template(State(sim): Sim, Path((r, p, id)): InObject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().get_template(r, &p, &id)))
}

async fn create_template(State(sim): Sim, Path((r, p)): InProject, body: Bytes) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().create_template(r, &p, parse_body(&body)?)))
}

async fn replace_template(State(sim): Sim, Path((r, p, id)): InObject, body: Bytes) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().replace_template(r, &p, &id, parse_body(&body)?)))
}

async fn delete_template(State(sim): Sim, Path((r, p, id)): InObject) -> Response {
    answer(region_of(&r).and_then(|r| sim.store().delete_template(r, &p, &id)))
}

async fn list_translations(
    State(sim): Sim,
    Path((r, p, id)): InObject,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (language, version) = (
        q.get("language_code").map(String::as_str),
        q.get("translation_version").map(String::as_str),
    );
    answer(region_of(&r).and_then(|r| sim.store().list_translations(r, &p, &id, language, version)))
}
