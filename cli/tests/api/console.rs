//! Compatibility with the seed's real client, the weplanx console
//! (github.com/weplanx/console at 64b870c; paths below are in that repository).
//! Each expectation is what the console reads or sends, with the file it comes
//! from: the profile's fields and `history`, the error bodies its HTTP
//! interceptor shows, the options it builds URLs and uploads from, and the raw
//! `+` its query strings carry. Runs on both backends, like the whole suite.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use shared::clock::rfc3339;
use shared::model::Totp;
use shared::secret::Secret;
use shared::store::UserChange;
use shared::totp::{code_at_step, step_of};

use crate::support::{PASSWORD, START, TestApp, TestResponse, USER_AGENT, other_than};

const EMAIL: &str = "ada@example.com";
const PHONE: &str = "+8613800138000";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// An account with a phone and an authenticator, signed in by password.
async fn console_user() -> (TestApp, shared::model::User) {
    let app = TestApp::spawn().await;
    let user = app.add_user_with_phone(EMAIL, PHONE).await;
    let totp = Totp {
        secret: Secret::new(TOTP_SECRET.into()),
        last_step: 0,
    };
    app.change_user(&user.id, UserChange::Totp(Some(totp)))
        .await;
    app.sign_in(EMAIL, PASSWORD).await;
    (app, user)
}

/// A TOTP code that no step around `START` accepts.
fn wrong_totp() -> String {
    let s = step_of(START);
    let right: Vec<String> = (s - 1..=s + 1)
        .map(|step| code_at_step(TOTP_SECRET, step).unwrap())
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", n * 7919 % 1_000_000))
        .find(|c| !right.contains(c))
        .unwrap()
}

/// An error as the console's interceptor handles it
/// (`src/app/app.interceptor.ts`): for a 400 it reads `e.error.code` and
/// `e.error.message` (a body without them shows "Failed [undefined]"), and it
/// shows nothing at all for a 429. So: the status, and a body of exactly a
/// string `code` and a non-empty string `message`.
#[track_caller]
fn console_error(r: &TestResponse, status: u16, code: &str) {
    r.expect(status);
    let keys: BTreeSet<&str> = r
        .body
        .as_object()
        .unwrap_or_else(|| panic!("no JSON object: {}", r.text))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["code", "message"]), "{}", r.text);
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert!(!r.message().is_empty(), "{}", r.text);
}

/// A limit, as `AUTH_MANY_INCORRECT` or any other 400 code: the wait in
/// `Retry-After` and in words, since `Failed [RATE_LIMITED] <message>` is
/// what the console shows for a code it does not know.
#[track_caller]
fn console_limit(r: &TestResponse, code: &str, retry_after: &str, message: &str) {
    console_error(r, 400, code);
    assert_eq!(r.headers["retry-after"], retry_after);
    assert_eq!(r.message(), message);
}

/// `GET /user` as the profile drawer reads it:
/// `src/common/components/nav/profile/profile.component.html` (`email`, `name`,
/// `avatar` as an object key behind `environment.cdn`, `phone` and `totp` only
/// as truthy markers, `lark` null for "not linked", `sessions` as the login
/// count, `history`), `src/common/models/user.ts` and `library/types.ts`
/// (`AnyDto`: `_id`, `create_time`, `update_time`).
#[tokio::test]
async fn the_profile_is_every_field_the_console_reads() {
    let (app, user) = console_user().await;
    let start = rfc3339(START);
    let r = app.get("/user").await;
    r.expect(200);
    assert_eq!(
        r.body,
        json!({
            "_id": user.id,
            "email": EMAIL,
            "name": "ada",
            "avatar": "",
            "phone": "+*********8000",
            "totp": "******",
            "lark": null,
            "sessions": 1,
            // `src/common/models/logset-login.ts` and profile.component.html:201-239:
            // `history.timestamp | date` (an ISO string; a number would be read as
            // milliseconds), `history.metadata.client_ip`; `metadata.version` and
            // `detail` only for geolocation, which this API does not look up.
            "history": {
                "timestamp": start,
                "metadata": { "client_ip": "203.0.113.7", "source": "password" },
                "user_agent": USER_AGENT,
            },
            "status": true,
            "create_time": start,
            "update_time": start,
        })
    );

    // Unbound, `@if (!!u.phone)` and `@if (!!u.totp)` must be false: empty strings.
    app.change_user(&user.id, UserChange::Phone(None)).await;
    app.change_user(&user.id, UserChange::Totp(None)).await;
    let r = app.get("/user").await;
    assert_eq!(
        (&r.body["phone"], &r.body["totp"]),
        (&json!(""), &json!(""))
    );
}

/// `src/app/app.service.ts:63-67`: `GET refresh_code` reads `code`, and
/// `POST refresh_token` sends it back as JSON `{code}`; the guard runs them
/// right after sign-in (`app.guard.ts`).
#[tokio::test]
async fn the_refresh_loop_reads_code_and_posts_it() {
    let (app, _) = console_user().await;
    let r = app.get("/refresh_code").await;
    r.expect(200);
    assert_eq!(r.body.as_object().unwrap().len(), 1, "{}", r.text);
    let code = r.body["code"].as_str().expect("a string code").to_string();
    app.post("/refresh_token", json!({ "code": code }))
        .await
        .expect(204);
    app.get("/verify").await.expect(204);
}

/// Wrong sign-in details and a throttled sign-in, on each of the three sign-in
/// forms (`login/basic/basic.component.ts`, `login/sms/sms.component.ts`,
/// `login/totp/totp.component.ts`): the two codes the interceptor
/// (`src/app/app.interceptor.ts`) turns into its own messages, "Your login
/// failed..." and "You have failed to log in too many times...".
#[tokio::test]
async fn sign_in_failures_use_the_consoles_two_codes() {
    let (app, _) = console_user().await;
    // A signed-out browser that signed in before: its device cookie leaves
    // only its own back-off to count its failures (README, "Guessing limits").
    let b = app.new_browser();
    b.set_cookie("DEVICE", &app.cookie("DEVICE").unwrap());
    b.ping().await;
    let incorrect =
        json!({ "code": "AUTH_INCORRECT", "message": "the sign-in details are incorrect" });

    let r = b.login(EMAIL, "not the password").await;
    console_error(&r, 400, "AUTH_INCORRECT");
    assert_eq!(r.body, incorrect);
    let r = b
        .post(
            "/login/totp",
            json!({ "email": EMAIL, "code": wrong_totp() }),
        )
        .await;
    assert_eq!((r.status.as_u16(), &r.body), (400, &incorrect));
    b.get("/login/sms?phone=%2B8613800138000").await.expect(204);
    let code = b.last_code(PHONE);
    let r = b
        .post(
            "/login/sms",
            json!({ "phone": PHONE, "code": other_than(&code) }),
        )
        .await;
    assert_eq!((r.status.as_u16(), &r.body), (400, &incorrect));
    assert!(r.headers.get("retry-after").is_none());

    // Five failures on the email (the password and TOTP forms name it) back
    // it off 1 s, whichever of the two is used; likewise the phone's.
    for _ in 0..3 {
        b.login(EMAIL, "not the password").await;
    }
    let many = "too many failed sign-ins; try again in 1 second";
    let r = b.login(EMAIL, PASSWORD).await;
    console_limit(&r, "AUTH_MANY_INCORRECT", "1", many);
    let totp = code_at_step(TOTP_SECRET, step_of(START)).unwrap();
    let r = b
        .post("/login/totp", json!({ "email": EMAIL, "code": totp }))
        .await;
    console_limit(&r, "AUTH_MANY_INCORRECT", "1", many);
    for _ in 0..4 {
        let wrong = json!({ "phone": PHONE, "code": other_than(&code) });
        b.post("/login/sms", wrong).await;
    }
    let r = b
        .post("/login/sms", json!({ "phone": PHONE, "code": code }))
        .await;
    console_limit(&r, "AUTH_MANY_INCORRECT", "1", many);
    b.get("/verify").await.expect(401);
}

/// The "send code" buttons (`login/sms/sms.component.ts:53-65`,
/// `nav/profile/phone/phone.component.ts:46-58`, `forget/forget.component.ts:79-90`)
/// have no error handler: asked again too soon, only the interceptor's toast
/// of a 400's message tells the user why the button keeps spinning.
#[tokio::test]
async fn codes_asked_again_too_soon_say_how_long_to_wait() {
    let (app, _) = console_user().await;
    let wait = "too many codes requested; try again in 1 minute";
    for path in [
        "/login/sms?phone=%2B8613800138000",
        "/forget_code?email=ada%40example.com",
        "/user/phone_code?phone=%2B8613800138001",
    ] {
        app.get(path).await.expect(204);
        console_limit(&app.get(path).await, "RATE_LIMITED", "60", wait);
    }
}

/// Every other failure of the seed's operations the console can meet is a
/// 400 with `{code, message}` (shown as `Failed [code] message`), a 401 (the
/// interceptor sends the user to `/login`) or a 403 ("Access is disabled"):
/// `src/app/app.interceptor.ts`. Calls as `src/app/app.service.ts` makes them.
#[tokio::test]
async fn every_other_failure_is_one_the_interceptor_shows() {
    let (app, _) = console_user().await;

    // forget.component.ts: the wrong code fails at the wizard's last step.
    let r = app
        .post(
            "/forget_reset",
            json!({ "email": EMAIL, "code": "000000", "password": "a brand new passphrase" }),
        )
        .await;
    console_error(&r, 400, "INVALID_CODE");
    let r = app
        .post("/refresh_token", json!({ "code": "000000" }))
        .await;
    console_error(&r, 400, "INVALID_CODE");
    // profile/name, avatar, email: `{key, <key>}`, lowercase.
    let r = app
        .patch("/user", json!({ "key": "email", "email": "no" }))
        .await;
    console_error(&r, 400, "INVALID_FIELD");
    let r = app
        .post(
            "/user/password",
            json!({ "old": "not it", "password": "a brand new passphrase" }),
        )
        .await;
    console_error(&r, 400, "WRONG_PASSWORD");
    app.get("/user/phone_code?phone=%2B8613800138001")
        .await
        .expect(204);
    let r = app
        .post(
            "/user/phone",
            json!({ "phone": "+8613800138001", "code": "000000" }),
        )
        .await;
    console_error(&r, 400, "INVALID_CODE");
    let uri = app.get("/user/totp").await.body["totp"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            "/user/totp",
            json!({ "totp": uri, "tss": ["000000", "000001"] }),
        )
        .await;
    console_error(&r, 400, "INVALID_TOTP");
    console_error(&app.delete("/user/avatar").await, 400, "INVALID_FIELD");
    console_error(
        &app.get("/options?type=download").await,
        400,
        "INVALID_FIELD",
    );
    console_error(&app.get("/login/sms?phone=138").await, 400, "INVALID_FIELD");

    // 403 without the XSRF header (Angular's xsrf interceptor sends it on every write).
    app.drop_cookie("XSRF-TOKEN");
    console_error(&app.post("/logout", json!({})).await, 403, "CSRF_FAILED");

    // 401 on every signed-in call once signed out: the console goes to /login.
    let out = app.new_browser();
    out.ping().await;
    for path in ["/verify", "/refresh_code", "/user", "/user/totp"] {
        console_error(&out.get(path).await, 401, "UNAUTHENTICATED");
    }
}

/// `GET /options?type=upload`, fetched on every load before sign-in
/// (`src/app/app.component.ts:45-47`): `library/types.ts:93-97` `UploadOption
/// {type, url, limit}`, and `library/directives/upload.directive.ts:21-26` gives
/// `limit` to ng-zorro's `nzSize`, in kilobytes (its own fallback is 5120).
#[tokio::test]
async fn upload_options_are_what_the_upload_directive_reads() {
    let app = TestApp::spawn_with(&[
        ("UPLOAD_TYPE", "cos"),
        (
            "UPLOAD_URL",
            "https://bucket-1250000000.cos.ap-guangzhou.myqcloud.com",
        ),
    ])
    .await;
    let r = app.get("/options?type=upload").await;
    r.expect(200);
    assert_eq!(
        r.body,
        json!({
            "type": "cos",
            "url": "https://bucket-1250000000.cos.ap-guangzhou.myqcloud.com",
            "limit": 5120,
        })
    );
}

/// `GET /options?type=collaboration`, from the login page before sign-in and from
/// the profile: `src/app/app.service.ts:95-106` builds
/// `${url}?redirect_uri=${encodeURIComponent(redirect)}&app_id=${app_id}&state=...`,
/// so `url` must carry no query of its own. It is this API's `GET /lark/authorize`
/// (`lark/` follows the browser on from there).
#[tokio::test]
async fn collaboration_options_make_the_consoles_lark_url() {
    let redirect = "https://api.example.com/lark";
    let app =
        TestApp::spawn_with(&[("LARK_APP_ID", "cli_a1b2c3d4"), ("LARK_REDIRECT", redirect)]).await;
    let r = app.get("/options?type=collaboration").await;
    r.expect(200);
    assert_eq!(
        r.body,
        json!({
            "url": "https://api.example.com/lark/authorize",
            "redirect": redirect,
            "app_id": "cli_a1b2c3d4",
        })
    );
    let built = format!(
        "{}?redirect_uri={}&app_id={}&state={{}}",
        r.body["url"].as_str().unwrap(),
        "https%3A%2F%2Fapi.example.com%2Flark",
        r.body["app_id"].as_str().unwrap()
    );
    assert_eq!(built.matches('?').count(), 1, "{built}");
}

/// `GET /options?type=generate-secret`: `data.id` and `data.key`
/// (`src/common/components/project/project.component.ts:72-78`).
#[tokio::test]
async fn generated_secrets_are_what_the_project_form_reads() {
    let app = TestApp::spawn().await;
    let r = app.get("/options?type=generate-secret").await;
    r.expect(200);
    let keys: BTreeSet<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["id", "key"]));
    let len = |v: &Value| v.as_str().unwrap().len();
    assert_eq!((len(&r.body["id"]), len(&r.body["key"])), (8, 16));
}

/// Angular's `HttpUrlEncodingCodec` leaves `+` raw in query values, so
/// `getLoginSms('+86' + phone)` (`login/sms/sms.component.ts:54`, `app.service.ts:35`)
/// sends `?phone=+86...`, which decodes to a space; the same for
/// `getUserPhoneCode` (`nav/profile/phone/phone.component.ts`) and an address
/// with a `+` in `getForgetCode` (`forget/forget.component.ts`).
#[tokio::test]
async fn a_raw_plus_in_the_query_is_read_as_plus() {
    let app = TestApp::spawn().await;
    app.add_user_with_phone(EMAIL, PHONE).await;
    app.add_user("ada+console@example.com").await;
    app.ping().await;

    app.get("/login/sms?phone=+8613800138000").await.expect(204);
    assert_eq!(app.sent_to(PHONE), 1);
    let code = app.last_code(PHONE);
    app.post("/login/sms", json!({ "phone": PHONE, "code": code }))
        .await
        .expect(204);

    app.get("/user/phone_code?phone=+8613800138001")
        .await
        .expect(204);
    assert_eq!(app.sent_to("+8613800138001"), 1);

    app.get("/forget_code?email=ada+console@example.com")
        .await
        .expect(204);
    assert_eq!(app.sent_to("ada+console@example.com"), 1);
}
