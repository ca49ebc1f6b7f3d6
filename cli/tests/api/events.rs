//! The sample events in `events/` (API Gateway HTTP API, payload format 2.0):
//! each is parsed as the Lambda runtime parses it (`lambda_http::request::from_str`),
//! sent through its own function's service (`shared::lambda::service`) on a server
//! with the events' `KEY` and the manual clock, after seeding what the event
//! relies on, and must answer the status in [`CASES`]. Every file is in the table
//! and every table entry has its file; the credentials the events carry must be
//! the ones the project's code derives from the `KEY` (see `events/README.md`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use planx::Function;
use serde_json::Value;
use shared::codes;
use shared::model::{LoginMethod, LoginRecord, Purpose, RefreshIssue, Session, Totp, User};
use shared::secret::Secret;
use shared::sessions;
use shared::store::Settle;
use shared::totp;
use tower::ServiceExt;

use crate::support::{PASSWORD, START, TestApp};
use crate::template;

/// The server `KEY` the events were made for.
const EVENTS_KEY: &str = "events-key-events-key-events-key-32b";
/// The `XSRF-SALT` cookie the events carry: 22 URL-safe base64 characters.
const SALT: &str = "ZXZlbnRzLXNhbHQtMDAwMQ";
/// `X-XSRF-TOKEN`: the token of [`SALT`] under [`EVENTS_KEY`].
const XSRF: &str = "qc-YZm5auyhYZQAS0FnrLDkBsYucYjEIuklvpFtQ_RI";
const USER_ID: &str = "0123456789abcdef01234567";
/// The `jti` of the `TOKEN` cookie: the session's sign-in time ([`START`]) and 128 bits.
const JTI: &str = "006b49d200.ZXZlbnRzLXNlc3Npb24tMQ";
/// The `jti` of another session of the account, signed in ten minutes before.
const OTHER_JTI: &str = "006b49cfa8.ZXZlbnRzLXNlc3Npb24tMg";
/// Its id in the device list, which `user/session-end-ok.json` ends.
const OTHER_KEY: &str = "006b49cfa8R3HooPktR0WABovRU4N5qw";
/// When the `TOKEN` JWT expires (2100-01-01T00:00:00Z); issued at [`START`].
const TOKEN_EXP: i64 = 4_102_444_800;
/// The `TOKEN` cookie: a JWT for [`USER_ID`] and [`JTI`] under [`EVENTS_KEY`].
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJwbGFueCIsInN1YiI6IjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2NyIsImp0aSI6IjAwNmI0OWQyMDAuWlhabGJuUnpMWE5sYzNOcGIyNHRNUSIsImlhdCI6MTgwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ.AcIyW5cmN9nxm-bWm3vIHjHxUie_Zn7JrpGGaROAuos";
const EMAIL: &str = "ada@example.com";
const PHONE: &str = "+14155550123";
/// The code the events redeem; the tests store exactly this code first.
const CODE: &str = "123456";
/// The account's bound TOTP secret (RFC 6238's test secret, base32).
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// Its code at [`START`], which `session/login-totp-ok.json` sends.
const TOTP_CODE: &str = "768147";
/// The pending secret `user/totp-bind-ok.json` binds, and its URI and codes at [`START`].
const PENDING_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const PENDING_URI: &str =
    "otpauth://totp/planx:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=planx";
const PENDING_CODES: [&str; 2] = ["445981", "877905"];
/// `requestContext.http.sourceIp` of every event.
const SOURCE_IP: &str = "198.51.100.23";
const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// What a case needs on the server before its event arrives. Every seed has
/// the account [`USER_ID`] ([`EMAIL`], [`PASSWORD`], TOTP bound) and its live
/// session [`JTI`] (and another, [`OTHER_JTI`]); the account has phone [`PHONE`] unless said otherwise.
#[derive(Debug, Clone, Copy)]
enum Seed {
    Account,
    /// The account without a phone.
    NoPhone,
    /// An SMS sign-in code [`CODE`] for [`PHONE`].
    SmsCode,
    /// A password-reset code [`CODE`] for [`EMAIL`].
    ResetCode,
    /// A refresh code [`CODE`] for the session.
    RefreshCode,
    /// No phone, and a code [`CODE`] to bind [`PHONE`].
    PhoneCode,
    /// [`PENDING_SECRET`] pending for binding.
    PendingTotp,
}

use Seed::*;

/// Every event: its path under `events/`, the status it answers, the error
/// code when it fails, and what it needs seeded.
#[rustfmt::skip]
const CASES: &[(&str, u16, &str, Seed)] = &[
    ("ping/ok.json",                              200, "",                  Account),
    ("ping/keeps-salt.json",                      200, "",                  Account),
    ("ping/replaces-bad-salt.json",               200, "",                  Account),
    ("session/login-ok.json",                     204, "",                  Account),
    ("session/login-wrong-password.json",         400, "AUTH_INCORRECT",    Account),
    ("session/login-invalid-email.json",          400, "INVALID_FIELD",     Account),
    ("session/login-no-csrf.json",                403, "CSRF_FAILED",       Account),
    ("session/login-sms-code-ok.json",            204, "",                  Account),
    ("session/login-sms-code-invalid-phone.json", 400, "INVALID_FIELD",     Account),
    ("session/login-sms-ok.json",                 204, "",                  SmsCode),
    ("session/login-sms-wrong-code.json",         400, "AUTH_INCORRECT",    SmsCode),
    ("session/login-totp-ok.json",                204, "",                  Account),
    ("session/login-totp-wrong-code.json",        400, "AUTH_INCORRECT",    Account),
    ("session/verify-ok.json",                    204, "",                  Account),
    ("session/verify-no-session.json",            401, "UNAUTHENTICATED",   Account),
    ("session/refresh-code-ok.json",              200, "",                  Account),
    ("session/refresh-code-no-session.json",      401, "UNAUTHENTICATED",   Account),
    ("session/refresh-token-ok.json",             204, "",                  RefreshCode),
    ("session/refresh-token-get-ok.json",         204, "",                  RefreshCode),
    ("session/refresh-token-wrong-code.json",     400, "INVALID_CODE",      RefreshCode),
    ("session/logout-ok.json",                    204, "",                  Account),
    ("session/logout-no-csrf.json",               403, "CSRF_FAILED",       Account),
    // Lark: redirects. An empty code is the way on to Lark's authorize page,
    // a code the console's failure route with it.
    ("session/lark-authorize-ok.json",            302, "",                  Account),
    ("session/lark-authorize-link-ok.json",       302, "",                  Account),
    ("session/lark-authorize-link-no-session.json", 302, "UNAUTHENTICATED", Account),
    ("session/lark-callback-no-state.json",       302, "LARK_STATE_INVALID", Account),
    ("session/lark-callback-forged-state.json",   302, "LARK_STATE_INVALID", Account),
    ("recovery/forget-code-ok.json",              204, "",                  Account),
    ("recovery/forget-code-invalid-email.json",   400, "INVALID_FIELD",     Account),
    ("recovery/forget-reset-ok.json",             204, "",                  ResetCode),
    ("recovery/forget-reset-wrong-code.json",     400, "INVALID_CODE",      ResetCode),
    ("recovery/forget-reset-weak-password.json",  400, "WEAK_PASSWORD",     ResetCode),
    ("recovery/forget-reset-no-csrf.json",        403, "CSRF_FAILED",       ResetCode),
    ("user/get-ok.json",                          200, "",                  Account),
    ("user/get-no-session.json",                  401, "UNAUTHENTICATED",   Account),
    ("user/set-name-ok.json",                     204, "",                  Account),
    ("user/set-invalid-key.json",                 400, "INVALID_FIELD",     Account),
    ("user/set-no-csrf.json",                     403, "CSRF_FAILED",       Account),
    ("user/password-ok.json",                     204, "",                  Account),
    ("user/reauthenticate-ok.json",               204, "",                  Account),
    ("user/reauthenticate-wrong.json",            400, "AUTH_INCORRECT",    Account),
    ("user/password-wrong-old.json",              400, "WRONG_PASSWORD",    Account),
    ("user/password-no-session.json",             401, "UNAUTHENTICATED",   Account),
    ("user/phone-code-ok.json",                   204, "",                  NoPhone),
    ("user/phone-code-invalid-phone.json",        400, "INVALID_FIELD",     NoPhone),
    ("user/phone-ok.json",                        204, "",                  PhoneCode),
    ("user/phone-wrong-code.json",                400, "INVALID_CODE",      PhoneCode),
    ("user/totp-url-ok.json",                     200, "",                  Account),
    ("user/totp-url-no-session.json",             401, "UNAUTHENTICATED",   Account),
    ("user/totp-bind-ok.json",                    204, "",                  PendingTotp),
    ("user/totp-bind-invalid-uri.json",           400, "INVALID_FIELD",     PendingTotp),
    ("user/unset-totp-ok.json",                   204, "",                  Account),
    ("user/unset-invalid-key.json",               400, "INVALID_FIELD",     Account),
    ("user/unset-no-csrf.json",                   403, "CSRF_FAILED",       Account),
    ("user/sessions-ok.json",                     200, "",                  Account),
    ("user/sessions-no-session.json",             401, "UNAUTHENTICATED",   Account),
    ("user/session-end-ok.json",                  204, "",                  Account),
    ("user/session-end-unknown.json",             404, "SESSION_NOT_FOUND", Account),
    ("user/session-end-no-csrf.json",             403, "CSRF_FAILED",       Account),
    ("user/sessions-end-others-ok.json",          200, "",                  Account),
    ("user/sessions-end-others-no-csrf.json",     403, "CSRF_FAILED",       Account),
    ("options/upload-ok.json",                    200, "",                  Account),
    ("options/collaboration-ok.json",             200, "",                  Account),
    ("options/generate-secret-ok.json",           200, "",                  Account),
    ("options/unknown-type.json",                 400, "INVALID_FIELD",     Account),
    ("options/missing-type.json",                 400, "INVALID_FIELD",     Account),
];

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn read_event(file: &str) -> String {
    let path = events_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The function that serves the events in `events/<function>/`.
fn function(name: &str) -> &'static Function {
    planx::functions::function(name).unwrap_or_else(|| panic!("no function {name}"))
}

/// The Lark app of the events' server: its callback on the events' host.
const LARK_REDIRECT: &str = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/lark";
const CONSOLE_URL: &str = "https://console.example.com/#/";

/// A server with the events' key and a Lark app, on the manual clock at
/// [`START`], seeded for `seed`.
async fn server(seed: Seed) -> TestApp {
    let app = TestApp::spawn_with(&[
        ("KEY", EVENTS_KEY),
        ("LARK_APP_ID", "cli_a1b2c3d4e5f6a7b8"),
        ("LARK_APP_SECRET", "events-lark-app-secret"),
        ("LARK_REDIRECT", LARK_REDIRECT),
        ("CONSOLE_URL", CONSOLE_URL),
    ])
    .await;
    let state = &app.state;
    let lifetimes = &state.config.lifetimes;
    let phone = (!matches!(seed, NoPhone | PhoneCode)).then(|| PHONE.to_string());
    let user = User {
        id: USER_ID.into(),
        email: EMAIL.into(),
        name: "Ada".into(),
        avatar: String::new(),
        phone,
        totp: Some(Totp {
            secret: Secret::new(TOTP_SECRET.into()),
            last_step: 0,
        }),
        lark: None,
        password: state.passwords.hash(PASSWORD).await.unwrap(),
        active: true,
        sessions: 0,
        history: None,
        created_at: START,
        updated_at: START,
        cred_version: 0,
    };
    state.store.insert_user(&user).await.unwrap();
    let settle = Settle::default();
    for (jti, time) in [(OTHER_JTI, START - 600), (JTI, START)] {
        let login = LoginRecord::new(time, SOURCE_IP, BROWSER, LoginMethod::Password);
        let key = sessions::key_of(jti).unwrap();
        let session = Session::begin(&user, key, &login, lifetimes.session);
        let begun = state.store.begin_session(&session, &login, &settle);
        assert!(begun.await.unwrap());
    }
    let code = match seed {
        Account | NoPhone | RefreshCode => None,
        SmsCode => Some((Purpose::SmsLogin, PHONE, None, lifetimes.sms_code, CODE)),
        ResetCode => Some((
            Purpose::PasswordReset,
            EMAIL,
            None,
            lifetimes.mail_code,
            CODE,
        )),
        PhoneCode => Some((
            Purpose::PhoneBind,
            USER_ID,
            Some(PHONE),
            lifetimes.sms_code,
            CODE,
        )),
        PendingTotp => Some((
            Purpose::TotpBind,
            USER_ID,
            None,
            lifetimes.totp_bind,
            PENDING_SECRET,
        )),
    };
    if let RefreshCode = seed {
        let session = auth_session(state).await;
        let digest = state.keys.code_digest("refresh", &session.id, CODE);
        let expires_at = START + lifetimes.refresh_code;
        let added = state
            .store
            .add_refresh_code(&session, &digest, expires_at, 5, START);
        assert_eq!(added.await.unwrap(), RefreshIssue::Added);
    }
    if let Some((purpose, subject, bound, ttl, code)) = code {
        codes::store(state, purpose, subject, bound, ttl, Some(code.into()))
            .await
            .unwrap();
    }
    app
}

/// The session the events' `TOKEN` names, as stored.
async fn auth_session(state: &shared::AppState) -> Session {
    let key = sessions::key_of(JTI).unwrap();
    let session = state.store.session(USER_ID, &key, START).await.unwrap();
    session.expect("the events' session is seeded")
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Answer {
    /// The value `Set-Cookie` gives cookie `name`, if it sets it.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next()?.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// Parses the event as the Lambda runtime does and sends it through its function's service.
async fn invoke(app: &TestApp, file: &str) -> Answer {
    let router = function(file.split('/').next().unwrap()).router;
    let request = lambda_http::request::from_str(&read_event(file))
        .unwrap_or_else(|e| panic!("{file} is not an HTTP API event: {e}"));
    let service = shared::lambda::service(router(), app.state.clone());
    let response = service.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Checks one case; `Err` says what went wrong.
async fn check(file: &str, status: u16, code: &str, seed: Seed) -> Result<(), String> {
    let app = server(seed).await;
    let r = invoke(&app, file).await;
    let fail = |what: String| Err(format!("{file}: {what}; body: {}", r.text));
    if r.status.as_u16() != status {
        return fail(format!("answered {}, expected {status}", r.status));
    }
    // Errors carry their business code; `GET /refresh_code`'s success body has a `code` too.
    // A redirect carries it in the console's failure route.
    let location = r
        .headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok());
    let redirected = location
        .and_then(|l| l.strip_prefix(&format!("{CONSOLE_URL}unauthorize?error=")))
        .map(|c| Value::String(c.to_string()));
    let error = if status >= 400 {
        &r.body["code"]
    } else {
        redirected.as_ref().unwrap_or(&Value::Null)
    };
    if error.as_str().unwrap_or_default() != code {
        return fail(format!("error code {error:?}, expected {code:?}"));
    }
    let salt = r.cookie("XSRF-SALT").unwrap_or_default();
    let xsrf = r.cookie("XSRF-TOKEN");
    let problem = match file {
        // The gateway's source IP reaches the handler.
        "ping/ok.json" if r.body["ip"] != SOURCE_IP => {
            Some(format!("ip {}, expected {SOURCE_IP}", r.body["ip"]))
        }
        "ping/ok.json" if salt.is_empty() || xsrf.is_none() => Some("no XSRF cookies".into()),
        "ping/keeps-salt.json" if salt != SALT || xsrf.as_deref() != Some(XSRF) => {
            Some("the salt or its token changed".into())
        }
        "ping/replaces-bad-salt.json"
            if salt.len() != 22 || xsrf != Some(app.state.keys.xsrf_token(&salt)) =>
        {
            Some(format!("no fresh salt and token (salt {salt:?})"))
        }
        "session/login-ok.json"
        | "session/login-sms-ok.json"
        | "session/login-totp-ok.json"
        | "session/refresh-token-ok.json"
        | "session/refresh-token-get-ok.json"
            if r.cookie("TOKEN").is_none_or(|t| t.is_empty()) =>
        {
            Some("no TOKEN cookie".into())
        }
        // The list shows both sessions, the current one first; ending the
        // other leaves only the current one; so does ending all others.
        "user/sessions-ok.json"
            if r.body["total"] != 2
                || r.body["sessions"][0]["current"] != true
                || r.body["sessions"][1]["id"] != OTHER_KEY
                || r.text.contains(JTI)
                || r.text.contains(OTHER_JTI) =>
        {
            Some("not the two sessions, current first, without jti".into())
        }
        "user/sessions-end-others-ok.json" if r.body["ended"] != 1 => {
            Some("not one other session ended".into())
        }
        // On to Lark's authorize page, with a state nonce in this browser's cookie.
        "session/lark-authorize-ok.json" | "session/lark-authorize-link-ok.json"
            if !location.is_some_and(|l| {
                l.starts_with(shared::lark::settings::LARK_AUTHORIZE)
                    && r.cookie("LARK_STATE")
                        .is_some_and(|s| l.contains(&format!("&state={s}&")))
            }) =>
        {
            Some(format!("not to Lark with the state cookie: {location:?}"))
        }
        _ => None,
    };
    if let Some(problem) = problem {
        return fail(problem);
    }
    if matches!(
        file,
        "user/session-end-ok.json" | "user/sessions-end-others-ok.json"
    ) {
        let left = app.state.store.sessions(USER_ID, START).await.unwrap();
        let left: Vec<_> = left.iter().map(|s| s.id.as_str()).collect();
        if left != [sessions::key_of(JTI).unwrap()] {
            return fail(format!("sessions left: {left:?}"));
        }
    }
    if file == "session/login-ok.json" {
        // So do the user agent and the IP of the event, into the login history.
        let user = app.user(USER_ID).await;
        let h = user.history.expect("the login is recorded");
        if (
            h.metadata.client_ip.as_str(),
            h.user_agent.as_str(),
            h.metadata.source,
        ) != (SOURCE_IP, BROWSER, LoginMethod::Password)
        {
            return fail(format!("history {h:?}"));
        }
    }
    Ok(())
}

/// Runs every case of one function, reporting all failures at once.
async fn run_function(function: &str) {
    let mut failures = vec![];
    let mut ran = 0;
    for &(file, status, code, seed) in CASES {
        if file.split('/').next() == Some(function) {
            ran += 1;
            if let Err(e) = check(file, status, code, seed).await {
                failures.push(e);
            }
        }
    }
    assert!(ran > 0, "no events for {function}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn ping_events() {
    run_function("ping").await;
}

#[tokio::test]
async fn session_events() {
    run_function("session").await;
}

#[tokio::test]
async fn recovery_events() {
    run_function("recovery").await;
}

#[tokio::test]
async fn user_events() {
    run_function("user").await;
}

#[tokio::test]
async fn options_events() {
    run_function("options").await;
}

/// The `.json` files under `events/`, as `function/case.json`.
fn event_files() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let function = entry.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(entry.path()).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            files.insert(format!("{function}/{name}"));
        }
    }
    files
}

#[test]
fn every_event_file_is_in_the_table_and_back() {
    let files = event_files();
    let table: BTreeSet<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    assert_eq!(table.len(), CASES.len(), "a file is listed twice");
    let untested: Vec<_> = files.difference(&table).collect();
    let missing: Vec<_> = table.difference(&files).collect();
    assert!(untested.is_empty(), "events without a case: {untested:?}");
    assert!(missing.is_empty(), "cases without an event: {missing:?}");
    for file in &files {
        let function = file.split('/').next().unwrap();
        assert!(
            planx::functions::function(function).is_some(),
            "{file}: no such function"
        );
    }
}

#[test]
fn credentials_in_the_events_come_from_the_key() {
    let keys = shared::crypto::Keys::derive(EVENTS_KEY.as_bytes());
    assert_eq!(XSRF, keys.xsrf_token(SALT), "X-XSRF-TOKEN");
    // TOKEN predates key ids (no `kid`), so it is checked under the current key.
    let tokens = shared::token::Tokens::fixed("planx", EVENTS_KEY.as_bytes());
    let claims = tokens
        .verify(TOKEN, START)
        .expect("TOKEN verifies under the key");
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.jti.as_str(),
            claims.iat,
            claims.exp
        ),
        (USER_ID, JTI, START, TOKEN_EXP),
        "TOKEN"
    );
    assert_eq!(sessions::key_of(OTHER_JTI).as_deref(), Some(OTHER_KEY));
    let step = totp::step_of(START);
    assert_eq!(
        TOTP_CODE,
        totp::code_at_step(TOTP_SECRET, step).unwrap(),
        "TOTP code"
    );
    assert_eq!(
        PENDING_URI,
        totp::url(PENDING_SECRET, "planx", EMAIL).unwrap(),
        "pending TOTP URI"
    );
    let pending = [step - 1, step].map(|s| totp::code_at_step(PENDING_SECRET, s).unwrap());
    assert_eq!(PENDING_CODES, pending.each_ref().map(String::as_str), "tss");
}

/// Percent-decoding of a query component (the events only escape ASCII).
fn decode(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let byte = rest
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match byte {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Checks the payload 2.0 shape of every event, and that the credentials it
/// carries are the documented ones.
#[test]
fn events_have_the_http_api_shape() {
    let mut problems = vec![];
    for file in event_files() {
        let e: Value = serde_json::from_str(&read_event(&file))
            .unwrap_or_else(|err| panic!("{file}: not JSON: {err}"));
        let mut bad = |what: &str| problems.push(format!("{file}: {what}"));
        let ctx = &e["requestContext"];
        let route = e["routeKey"].as_str().unwrap_or_default();
        let (method, template) = route.split_once(' ').unwrap_or_default();
        if e["version"] != "2.0" {
            bad("version is not 2.0");
        }
        if route == "$default" || ctx["routeKey"] != route {
            bad("routeKey is not \"METHOD /path\" in both places");
        }
        if ctx["http"]["method"] != method || ctx["http"]["path"] != e["rawPath"] {
            bad("requestContext.http does not match routeKey and rawPath");
        }
        let path = e["rawPath"].as_str().unwrap_or_default();
        let path_params = e["pathParameters"].as_object();
        let expanded = path_params
            .into_iter()
            .flatten()
            .fold(template.to_string(), |t, (k, v)| {
                t.replace(&format!("{{{k}}}"), v.as_str().unwrap_or_default())
            });
        if expanded != path {
            bad("routeKey with pathParameters is not rawPath");
        }
        if ctx["stage"] != "$default" || ctx["http"]["sourceIp"] != SOURCE_IP {
            bad("stage or sourceIp");
        }
        if e["isBase64Encoded"] != false {
            bad("isBase64Encoded is not false");
        }
        // queryStringParameters: the decoded rawQueryString, absent when it is empty.
        let query = e["rawQueryString"].as_str().unwrap_or_default();
        let decoded: serde_json::Map<String, Value> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), Value::String(decode(v)))
            })
            .collect();
        let query_params = e.get("queryStringParameters").cloned();
        if query_params != (!decoded.is_empty()).then_some(Value::Object(decoded)) {
            bad("queryStringParameters do not match rawQueryString");
        }
        let headers = e["headers"].as_object().cloned().unwrap_or_default();
        if headers.keys().any(|k| *k != k.to_ascii_lowercase()) {
            bad("header names are not lower case");
        }
        if headers.contains_key("cookie") {
            bad("cookies belong in `cookies`, not a header");
        }
        if headers.get("user-agent").and_then(Value::as_str) != Some(BROWSER)
            || ctx["http"]["userAgent"] != BROWSER
        {
            bad("user agent");
        }
        if headers
            .get("x-xsrf-token")
            .is_some_and(|v| v.as_str() != Some(XSRF))
        {
            bad("x-xsrf-token is not the documented one");
        }
        if let Some(body) = e["body"].as_str()
            && headers.get("content-length").and_then(Value::as_str)
                != Some(body.len().to_string().as_str())
        {
            bad("content-length does not match the body");
        }
        for cookie in e["cookies"].as_array().into_iter().flatten() {
            let (name, value) = cookie.as_str().unwrap_or_default().split_once('=').unwrap();
            let expected = match name {
                "TOKEN" => TOKEN,
                "XSRF-SALT" if file != "ping/replaces-bad-salt.json" => SALT,
                "XSRF-TOKEN" => XSRF,
                _ => continue,
            };
            if value != expected {
                bad(&format!("cookie {name} is not the documented one"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The HTTP API routes `template.yaml` declares, as (function logical id, route key).
fn template_routes() -> BTreeSet<(String, String)> {
    template::routes(&template::template())
        .into_iter()
        .map(|r| (r.function.clone(), r.key()))
        .collect()
}

#[test]
fn event_routes_are_declared_for_their_function() {
    let routes = template_routes();
    assert!(routes.len() >= 20, "few routes read: {routes:?}");
    for file in event_files() {
        let e: Value = serde_json::from_str(&read_event(&file)).unwrap();
        let route = e["routeKey"].as_str().unwrap_or_default().to_string();
        let resource = template::logical_id(function(file.split('/').next().unwrap()));
        assert!(
            routes.contains(&(resource.clone(), route.clone())),
            "{file}: {resource} declares no route {route:?} in template.yaml"
        );
        // The gateway prefers a static route to a templated one.
        let method = e["requestContext"]["http"]["method"].as_str().unwrap();
        let exact = format!("{method} {}", e["rawPath"].as_str().unwrap());
        assert!(
            route == exact || !routes.iter().any(|(_, r)| *r == exact),
            "{file}: the gateway would match {exact:?}, not {route:?}"
        );
    }
}
