//! `/user*`, one file an operation group: the profile, its edits, the password,
//! phone binding and unbinding. TOTP binding is in `totp.rs`, beside TOTP login.

mod password;
mod phone;
mod profile;
mod set;
mod unset;

use serde_json::json;
use shared::model::Totp;
use shared::secret::Secret;
use shared::store::UserChange;

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

/// `TOTP_SECRET` bound to the account, set in the store (binding through the API
/// is tested in `totp.rs`).
fn bound_totp() -> UserChange {
    UserChange::Totp(Some(Totp {
        secret: Secret::new(TOTP_SECRET.to_string()),
        last_step: 0,
    }))
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
