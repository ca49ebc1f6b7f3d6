//! Lark sign-in and linking ([`shared::lark`]): `GET /lark/authorize` begins
//! a flow and sends the browser to Lark; `GET /lark` is Lark's callback,
//! which links the identity or signs in with it. Both are top-level browser
//! navigations, so every answer is a redirect: to Lark's authorize page, or
//! to the console (`CONSOLE_URL`), never to a URL taken from the request:
//!
//! - linked, or signed in (with the session's cookies): `{CONSOLE_URL}authorized`;
//! - refused: `{CONSOLE_URL}unauthorize`, the error's code in the fragment
//!   (`#error=CODE`, or `?error=CODE` after a hash route).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::crypto::constant_time_eq;
use shared::device::Device;
use shared::error::Failure;
use shared::http::{Auth, Client, Query, cookies};
use shared::lark::{self, LarkClient};
use shared::model::{LarkFlow, LarkIdentity, LinkRequest, LoginMethod};
use shared::notices;
use shared::store::{Lookup, Settle, StoreError, UserChange};
use shared::{ApiError, ApiResult, AppState};
use utoipa::IntoParams;

use crate::login;

/// What the console sends to begin: the weplanx console appends
/// `?redirect_uri=...&app_id=...&state=...` to the collaboration option's `url`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Begin {
    /// The console's intent as JSON: `{}` to sign in, `{"action":"link"}` to
    /// link the Lark account to the signed-in one (absent: sign in).
    #[param(example = r#"{"action":"link"}"#)]
    state: Option<String>,
    /// Ignored: the callback is always `LARK_REDIRECT`.
    redirect_uri: Option<String>,
    /// Ignored: the app is always `LARK_APP_ID`.
    app_id: Option<String>,
}

/// What Lark sends back: `code` and `state`, or `error` and `state` when the
/// person declined.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Callback {
    /// The authorization code (single use, 5 minutes).
    code: Option<String>,
    /// The nonce `GET /lark/authorize` put in the `LARK_STATE` cookie.
    state: Option<String>,
    /// `access_denied` when the person declined.
    error: Option<String>,
}

#[utoipa::path(
    get,
    path = "/lark/authorize",
    summary = "Lark Authorize",
    description = "Begins a Lark sign-in, or a link to the signed-in account: sets the \
        `LARK_STATE` cookie (HttpOnly, 10 minutes) and redirects to Lark's authorize page. \
        `GET /options?type=collaboration` answers this URL as `url`. To link, the request \
        carries the `TOKEN` cookie of a recent sign-in.",
    params(Begin),
    responses(
        (status = 302, description = "To Lark's authorize page (`LARK_AUTH_URL` with `client_id`, \
            `redirect_uri`, the state nonce and a PKCE challenge), setting `LARK_STATE`; or, \
            refused, to the console's failure route with the code in the fragment: \
            `INVALID_FIELD` (`state` is not the console's JSON), `UNAUTHENTICATED` or \
            `SESSION_ENDED` (linking needs a session), `REAUTHENTICATE` (linking needs a \
            sign-in within `REAUTH_WINDOW`: `POST /user/reauthenticate`, then start again), \
            `SERVICE_UNAVAILABLE`.",
            headers(
                ("Location" = String, description = "Lark's authorize page, or the console's failure route"),
                ("Set-Cookie" = String, description = "`LARK_STATE`: the flow's nonce"),
            )),
        (status = 404, description = "Code: `LARK_DISABLED` (Lark sign-in is off; the message names the settings it needs)."),
    )
)]
pub(crate) async fn authorize(
    State(state): State<AppState>,
    mut parts: Parts,
    Query(begin): Query<Begin>,
) -> Response {
    if state.lark.is_none() {
        return disabled(&state);
    }
    let _ignored = (begin.redirect_uri, begin.app_id);
    match start(&state, &mut parts, begin.state.as_deref()).await {
        Ok(response) => response,
        Err(e) => refused(&state, e),
    }
}

/// Stores the flow and sends the browser to Lark with its nonce.
async fn start(state: &AppState, parts: &mut Parts, intent: Option<&str>) -> ApiResult<Response> {
    let link = match wants_link(intent)? {
        true => Some(link_request(state, parts).await?),
        false => None,
    };
    let nonce = lark::new_state();
    let ring = state.keys.ring();
    let (key_id, keys) = ring.current();
    let flow = LarkFlow {
        id: lark::flow_id(&nonce),
        key_id: key_id.to_string(),
        link,
        expires_at: state.now() + lark::FLOW_TTL,
    };
    state.store.put_lark_flow(&flow).await?;
    let challenge = lark::challenge(&lark::verifier(keys, &nonce));
    let location = lark::authorize_url(&state.config.lark, &nonce, &challenge);
    let cookie =
        cookies::set_for_navigation(&state.config, lark::STATE_COOKIE, &nonce, lark::FLOW_TTL);
    let mut response = redirect(&location);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// The signed-in session a link is for. Linking is a change a stolen session
/// must not make, so it needs a recent sign-in (step-up, `REAUTH_WINDOW`):
/// checked here, before Lark is asked. The flow then lives `FLOW_TTL` at most
/// and is bound to this browser.
async fn link_request(state: &AppState, parts: &mut Parts) -> ApiResult<LinkRequest> {
    let auth = Auth::from_request_parts(parts, state).await?;
    auth.require_recent(state)?;
    Ok(LinkRequest {
        user_id: auth.user_id,
        session_id: auth.session_id,
    })
}

/// Whether the console's `state` asks to link (`{"action":"link"}`) rather
/// than sign in (`{}`, no action, or no `state`).
fn wants_link(intent: Option<&str>) -> ApiResult<bool> {
    let Some(raw) = intent.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    let bad = || {
        ApiError::field(
            "state",
            r#"must be the console's JSON: {} or {"action":"link"}"#,
        )
    };
    // A JSON object (serde would take `[]` for a struct too).
    let intent: serde_json::Value = serde_json::from_str(raw).map_err(|_| bad())?;
    let object = intent.as_object().ok_or_else(bad)?;
    match object.get("action") {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::String(action)) => match action.as_str() {
            "" => Ok(false),
            "link" => Ok(true),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

#[utoipa::path(
    get,
    path = "/lark",
    summary = "Lark Callback",
    description = "Lark's redirect after its authorize page: checks `state` against the \
        `LARK_STATE` cookie and the flow it names (once), then exchanges `code` with Lark \
        for the person's identity, and links it to the account that began the flow, or \
        signs in the account it is linked to. Clears `LARK_STATE`.",
    params(Callback),
    responses(
        (status = 302, description = "To the console: `{CONSOLE_URL}authorized` when linked, or \
            signed in with the `TOKEN` and `DEVICE` cookies; or \
            `{CONSOLE_URL}unauthorize` with the code in the fragment: `LARK_STATE_INVALID` \
            (state missing, not this browser's, used or expired), `LARK_DENIED`, \
            `INVALID_FIELD` (no code), `LARK_REFUSED`, `LARK_UNAVAILABLE` (Lark failed or \
            timed out), `LARK_NOT_LINKED`, `LARK_TAKEN` (linked to another account), \
            `ACCOUNT_DISABLED`, `AUTH_MANY_INCORRECT` (a guessing limit; `&retry_after=` \
            the seconds to wait follows the code), `SESSION_ENDED`, `SERVICE_UNAVAILABLE`.",
            headers(
                ("Location" = String, description = "The console, as `CONSOLE_URL` says"),
                ("Set-Cookie" = String, description = "`LARK_STATE` cleared; `TOKEN` and `DEVICE` after a sign-in"),
            )),
        (status = 404, description = "Code: `LARK_DISABLED` (Lark sign-in is off; the message names the settings it needs)."),
    )
)]
pub(crate) async fn callback(
    State(state): State<AppState>,
    client: Client,
    device: Device,
    headers: HeaderMap,
    Query(answer): Query<Callback>,
) -> Response {
    let Some(lark) = &state.lark else {
        return disabled(&state);
    };
    // This browser's flow ends here, whatever the outcome; a callback with
    // another state (a forged one) leaves it be.
    let own = own_state(&headers, answer.state.as_deref()).is_some();
    let mut response = match complete(&state, lark, &client, &device, &headers, answer).await {
        Ok(response) => response,
        Err(e) => refused(&state, e),
    };
    if own {
        let spent = cookies::set_for_navigation(&state.config, lark::STATE_COOKIE, "", 0);
        response.headers_mut().append(header::SET_COOKIE, spent);
    }
    response
}

async fn complete(
    state: &AppState,
    lark: &LarkClient,
    client: &Client,
    device: &Device,
    headers: &HeaderMap,
    answer: Callback,
) -> ApiResult<Response> {
    let flow = take_flow(state, headers, answer.state.as_deref()).await?;
    if answer.error.is_some() {
        return Err(ApiError::LarkDenied);
    }
    let code = answer
        .code
        .filter(|c| is_code(c))
        .ok_or_else(|| ApiError::field("code", "is missing or malformed"))?;
    let ring = state.keys.ring();
    // The key the flow began under has been dropped since: as good as expired.
    let keys = ring.get(&flow.key_id).ok_or(ApiError::LarkState)?;
    let nonce = answer.state.unwrap_or_default();
    let identity = lark
        .identity(&code, &lark::verifier(keys, &nonce))
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "Lark gave no identity"))?;
    match flow.link {
        Some(link) => link_to(state, &link, identity).await,
        None => sign_in_as(state, client, device, &identity).await,
    }
}

/// `state`, if it is a nonce and this browser's `LARK_STATE` cookie holds it.
fn own_state<'s>(headers: &HeaderMap, state: Option<&'s str>) -> Option<&'s str> {
    let nonce = state.filter(|n| lark::is_state(n))?;
    let cookie = cookies::get(headers, lark::STATE_COOKIE)?;
    constant_time_eq(cookie.as_bytes(), nonce.as_bytes()).then_some(nonce)
}

/// The flow `state` names, if this browser began it: the cookie and the
/// parameter agree, and the flow is taken (so never twice) before it expires.
async fn take_flow(
    state: &AppState,
    headers: &HeaderMap,
    nonce: Option<&str>,
) -> ApiResult<LarkFlow> {
    let nonce = own_state(headers, nonce).ok_or(ApiError::LarkState)?;
    let flow = state
        .store
        .take_lark_flow(&lark::flow_id(nonce), state.now())
        .await?;
    flow.ok_or(ApiError::LarkState)
}

/// A code as Lark issues them: 1 to 1024 of `[A-Za-z0-9-_.~]`.
fn is_code(code: &str) -> bool {
    (1..=1024).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// Links `identity` to the account whose session began the flow, if that
/// session may still act for it (alive, the account active at the
/// credentials it began under): the guard and the account in one
/// transaction; then the owner is told.
async fn link_to(
    state: &AppState,
    link: &LinkRequest,
    identity: LarkIdentity,
) -> ApiResult<Response> {
    let now = state.now();
    let store = &state.store;
    let (session, user) = store
        .session_and_user(&link.user_id, &link.session_id, now)
        .await?;
    let session = session.ok_or(ApiError::SessionEnded)?;
    let user = user
        .filter(|u| session.is_valid_for(u))
        .ok_or(ApiError::SessionEnded)?;
    let change = UserChange::Lark(Some(identity));
    match notices::settle_change(state, &user, change, &Settle::default()).await {
        Ok(_) => Ok(redirect(&console(state, "authorized"))),
        Err(StoreError::NoSuchUser | StoreError::Changed) => Err(ApiError::SessionEnded),
        Err(e) => Err(e.into()),
    }
}

/// Signs in the account `identity` is linked to, as the other methods do:
/// its guessing slots first, then a session, history, device cookie.
async fn sign_in_as(
    state: &AppState,
    client: &Client,
    device: &Device,
    identity: &LarkIdentity,
) -> ApiResult<Response> {
    let owner = state.store.user_id_by_lark(&identity.open_id).await?;
    let owner = owner.ok_or(ApiError::LarkNotLinked)?;
    let began = login::begin(state, client, device, Lookup::Id(&owner), None).await?;
    // Unlinked meanwhile: as good as never linked.
    let user = began
        .user
        .filter(|u| {
            u.lark
                .as_ref()
                .is_some_and(|l| l.open_id == identity.open_id)
        })
        .ok_or(ApiError::LarkNotLinked)?;
    let method = LoginMethod::Lark;
    let cookies =
        login::session_cookies(state, client, device, &user, method, began.settle).await?;
    Ok((cookies, redirect(&console(state, "authorized"))).into_response())
}

/// `CONSOLE_URL` with a route after it.
fn console(state: &AppState, route: &str) -> String {
    format!("{}{route}", state.config.lark.console_url)
}

/// The console's failure route with `code` (and the wait a limit asks for,
/// seconds): in the fragment, or in the hash route's query when the console
/// routes by hash.
fn failure_location(state: &AppState, code: &str, retry_after: Option<&str>) -> String {
    let route = console(state, "unauthorize");
    let joint = if route.contains('#') { '?' } else { '#' };
    match retry_after {
        Some(wait) => format!("{route}{joint}error={code}&retry_after={wait}"),
        None => format!("{route}{joint}error={code}"),
    }
}

/// 302 to `location`, never cached, never telling the next page where it came from.
fn redirect(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    let no_store = HeaderValue::from_static("no-store");
    let no_referrer = HeaderValue::from_static("no-referrer");
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, no_store),
            (header::REFERRER_POLICY, no_referrer),
        ],
    )
        .into_response()
}

/// The console's failure route for `e`, with its `Retry-After` if it is a
/// limit; a 500's or 503's cause still reaches the request log.
fn refused(state: &AppState, e: ApiError) -> Response {
    let code = e.code();
    let answer = e.into_response();
    let wait = answer.headers().get(header::RETRY_AFTER);
    let wait = wait.and_then(|v| v.to_str().ok());
    let mut response = redirect(&failure_location(state, code, wait));
    if let Some(failure) = answer.extensions().get::<Failure>().cloned() {
        response.extensions_mut().insert(failure);
    }
    response
}

/// 404 `LARK_DISABLED`, naming the settings Lark sign-in waits for.
fn disabled(state: &AppState) -> Response {
    ApiError::LarkDisabled(state.config.lark.missing().join(", ")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consoles_state_says_sign_in_or_link() {
        for sign_in in [
            None,
            Some(""),
            Some("{}"),
            Some(r#"{"action":""}"#),
            Some(r#"{"locale":"en"}"#),
        ] {
            assert!(!wants_link(sign_in).unwrap(), "{sign_in:?}");
        }
        assert!(wants_link(Some(r#"{"action":"link","locale":"zh"}"#)).unwrap());
        for bad in ["link", r#"{"action":"unlink"}"#, "[]", r#"{"action":1}"#] {
            let e = wants_link(Some(bad)).unwrap_err();
            assert_eq!(e.code(), "INVALID_FIELD", "{bad}");
        }
    }

    #[test]
    fn codes_are_lark_shaped() {
        assert!(is_code("a1B2-c3_d4.e~"));
        for bad in ["", "a b", "a/b", "<x>", &"a".repeat(1025)] {
            assert!(!is_code(bad), "{bad:?}");
        }
    }
}
