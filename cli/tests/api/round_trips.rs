//! DynamoDB round trips per operation, counted on the AWS backend and held to
//! the numbers in BENCHMARKS.md: a regression (an extra call) fails here.

use serde_json::json;

use crate::support::{PASSWORD, TestApp, TestResponse};

const PHONE: &str = "+14155550123";
const PHONE_Q: &str = "%2B14155550123";

/// Runs one request and returns its response and DynamoDB call count.
async fn counted<F: std::future::Future<Output = TestResponse>>(
    app: &TestApp,
    f: F,
) -> (TestResponse, u64) {
    let before = app.round_trips().unwrap();
    let r = f.await;
    (r, app.round_trips().unwrap() - before)
}

/// Each seed operation with the calls it makes; `None` entries make none.
#[tokio::test]
async fn round_trips_per_operation() {
    let app = TestApp::spawn().await;
    if app.aws.is_none() {
        eprintln!("round trips are counted on the AWS backend (PLANX_TEST_BACKEND=aws)");
        return;
    }
    app.add_user_with_phone("ada@example.com", PHONE).await;
    let mut table: Vec<(&str, u16, u64)> = vec![];
    macro_rules! op {
        ($name:expr, $status:expr, $req:expr) => {{
            let (r, n) = counted(&app, $req).await;
            r.expect($status);
            table.push(($name, $status, n));
            r
        }};
    }
    op!("GET /", 200, app.ping());
    op!(
        "POST /login (wrong password)",
        400,
        app.login("ada@example.com", "wrong password")
    );
    op!(
        "POST /login (new browser)",
        204,
        app.login("ada@example.com", PASSWORD)
    );
    // Now with the device cookie that sign-in left.
    op!(
        "POST /login (device cookie)",
        204,
        app.login("ada@example.com", PASSWORD)
    );
    op!("GET /verify", 204, app.get("/verify"));
    app.advance(61);
    op!("GET /verify (renewal due)", 204, app.get("/verify"));
    op!("GET /user", 200, app.get("/user"));
    op!(
        "PATCH /user (name)",
        204,
        app.patch("/user", json!({ "key": "name", "name": "Ada" }))
    );
    op!(
        "PATCH /user (email)",
        204,
        app.patch(
            "/user",
            json!({ "key": "email", "email": "ada@example.org" })
        )
    );
    let code = op!("GET /refresh_code", 200, app.get("/refresh_code")).body["code"]
        .as_str()
        .unwrap()
        .to_string();
    op!(
        "POST /refresh_token",
        204,
        app.post("/refresh_token", json!({ "code": code }))
    );
    op!(
        "POST /refresh_token (wrong code)",
        400,
        app.post("/refresh_token", json!({ "code": code }))
    );
    // Two other devices of the account, one ended by id, then the other with
    // every other session.
    let other = app.signed_in_as("ada@example.org").await;
    app.signed_in_as("ada@example.org").await;
    let listed = op!("GET /user/sessions", 200, app.get("/user/sessions"));
    let id = listed.body["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    op!(
        "DELETE /user/sessions/{id}",
        204,
        app.delete(&format!("/user/sessions/{id}"))
    );
    op!(
        "DELETE /user/sessions (one other)",
        200,
        app.delete("/user/sessions")
    );
    op!(
        "DELETE /user/sessions (none other)",
        200,
        app.delete("/user/sessions")
    );
    other.get("/verify").await.expect(401);
    op!(
        "GET /login/sms",
        204,
        app.get(&format!("/login/sms?phone={PHONE_Q}"))
    );
    let code = app.last_code(PHONE);
    op!(
        "POST /login/sms (device cookie)",
        204,
        app.post("/login/sms", json!({ "phone": PHONE, "code": code }))
    );
    let fresh = app.new_browser();
    fresh.ping().await;
    app.advance(60);
    fresh
        .get(&format!("/login/sms?phone={PHONE_Q}"))
        .await
        .expect(204);
    let code = app.last_code(PHONE);
    op!(
        "POST /login/sms (new browser)",
        204,
        fresh.post("/login/sms", json!({ "phone": PHONE, "code": code }))
    );
    op!(
        "GET /forget_code",
        204,
        app.get("/forget_code?email=ada@example.org")
    );
    let code = app.last_code("ada@example.org");
    op!(
        "POST /forget_reset",
        204,
        app.post("/forget_reset", json!({ "email": "ada@example.org", "code": code, "password": "another long passphrase" }))
    );
    app.login("ada@example.org", "another long passphrase")
        .await
        .expect(204);
    op!(
        "POST /user/reauthenticate",
        204,
        app.post(
            "/user/reauthenticate",
            json!({ "password": "another long passphrase" })
        )
    );
    op!(
        "POST /user/password",
        204,
        app.post(
            "/user/password",
            json!({ "old": "another long passphrase", "password": PASSWORD })
        )
    );
    op!("DELETE /user/phone", 204, app.delete("/user/phone"));
    app.advance(60);
    op!(
        "GET /user/phone_code",
        204,
        app.get(&format!("/user/phone_code?phone={PHONE_Q}"))
    );
    let code = app.last_code(PHONE);
    op!(
        "POST /user/phone",
        204,
        app.post("/user/phone", json!({ "phone": PHONE, "code": code }))
    );
    let uri = op!("GET /user/totp", 200, app.get("/user/totp")).body["totp"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = shared::totp::secret_from_url(&uri).unwrap();
    let step = shared::totp::step_of(app.clock_now());
    let tss = [step - 1, step].map(|s| shared::totp::code_at_step(&secret, s).unwrap());
    op!(
        "POST /user/totp",
        204,
        app.post("/user/totp", json!({ "totp": uri, "tss": tss }))
    );
    app.advance(30);
    let code = shared::totp::code_at_step(&secret, step + 1).unwrap();
    op!(
        "POST /login/totp (device cookie)",
        204,
        app.post(
            "/login/totp",
            json!({ "email": "ada@example.org", "code": code })
        )
    );
    app.advance(30);
    let code = shared::totp::code_at_step(&secret, step + 2).unwrap();
    let fresh = app.new_browser();
    fresh.ping().await;
    op!(
        "POST /login/totp (new browser)",
        204,
        fresh.post(
            "/login/totp",
            json!({ "email": "ada@example.org", "code": code })
        )
    );
    op!("DELETE /user/totp", 204, app.delete("/user/totp"));
    op!(
        "GET /options",
        200,
        app.get("/options?type=generate-secret")
    );
    op!("POST /logout", 204, app.post("/logout", json!({})));

    eprintln!("| operation | status | DynamoDB calls |\n|---|---|---|");
    for (name, status, n) in &table {
        eprintln!("| {name} | {status} | {n} |");
    }
    let expected: &[(&str, u64)] = &[
        ("GET /", 0),
        ("POST /login (wrong password)", 3),
        ("POST /login (new browser)", 4),
        ("POST /login (device cookie)", 3),
        ("GET /verify", 1),
        ("GET /verify (renewal due)", 2),
        ("GET /user", 1),
        ("PATCH /user (name)", 2),
        ("PATCH /user (email)", 2),
        ("GET /refresh_code", 2),
        ("POST /refresh_token", 2),
        ("POST /refresh_token (wrong code)", 2),
        ("GET /user/sessions", 2),
        ("DELETE /user/sessions/{id}", 2),
        ("DELETE /user/sessions (one other)", 3),
        ("DELETE /user/sessions (none other)", 2),
        ("GET /login/sms", 5),
        ("POST /login/sms (device cookie)", 3),
        ("POST /login/sms (new browser)", 4),
        ("GET /forget_code", 5),
        ("POST /forget_reset", 8),
        ("POST /user/reauthenticate", 4),
        ("POST /user/password", 5),
        ("DELETE /user/phone", 2),
        ("GET /user/phone_code", 5),
        ("POST /user/phone", 4),
        ("GET /user/totp", 2),
        ("POST /user/totp", 3),
        ("POST /login/totp (device cookie)", 3),
        ("POST /login/totp (new browser)", 4),
        ("DELETE /user/totp", 2),
        ("GET /options", 0),
        ("POST /logout", 1),
    ];
    assert_eq!(table.len(), expected.len());
    for ((name, _, got), (want_name, want)) in table.iter().zip(expected) {
        assert_eq!(name, want_name);
        assert_eq!(got, want, "DynamoDB calls for {name}");
    }
}
