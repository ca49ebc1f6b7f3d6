//! `/user*`, one file an operation group: the profile, its edits, the password,
//! phone binding and unbinding. TOTP binding is in `totp.rs`, beside TOTP login.

mod password;
mod phone;
mod profile;
mod set;
mod unset;

use serde_json::json;

use crate::support::{TestApp, TestResponse};

const PHONE: &str = "+14155550123";
const MASKED: &str = "+*******0123";
const OTHER_PHONE: &str = "+8613800138000";
const NEW_PASSWORD: &str = "a brand new passphrase";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// `GET /user/phone_code` for `phone`, percent-encoded as a browser would
/// (a raw `+` in a query string means a space).
fn phone_code_path(phone: &str) -> String {
    let encoded: String = phone
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_string(),
            ' ' => "%20".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!("/user/phone_code?phone={encoded}")
}

/// A six-digit code that is certainly not `code`.
fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

/// A fresh browser on `app`'s server, signed in as `email`.
async fn browser_as(app: &TestApp, email: &str, password: &str) -> TestApp {
    let b = app.new_browser();
    b.ping().await.expect(200);
    b.login(email, password).await.expect(204);
    b
}

/// Requests a phone-binding code for `phone` and returns it.
async fn request_code(app: &TestApp, phone: &str) -> String {
    app.get(&phone_code_path(phone)).await.expect(204);
    app.last_code(phone)
}

async fn bind(app: &TestApp, phone: &str, code: &str) -> TestResponse {
    app.post("/user/phone", json!({ "phone": phone, "code": code }))
        .await
}
