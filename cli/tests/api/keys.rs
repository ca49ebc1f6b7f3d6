//! The server key and its rotation. Credentials issued under a key (a session
//! token, an XSRF token, a pending code) keep working while that key is the
//! previous one, and stop once it is gone; a key announced as next is accepted
//! before it issues anything. On the AWS backend the keys live in a Secrets
//! Manager secret in moto and each step reaches the app the way it reaches a
//! function: the secret is rewritten and the app re-reads it when due. On the
//! embedded backend the same steps swap the keys in place.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use shared::aws::{Sdk, SecretKeys};
use shared::crypto::Keys;
use shared::keys::{KeyRing, ServerKey, ServerKeys};
use shared::token::Tokens;

use crate::support::{PASSWORD, TestApp};

const OLD: &str = "old-key-old-key-old-key-old-key-old!";
const NEW: &str = "new-key-new-key-new-key-new-key-new!";
/// How often the app re-reads the secret in these tests (`KEY_SECRET_REFRESH`).
const REFRESH: i64 = 10;
const ADA_PHONE: &str = "+14155550123";
const BOB_PHONE: &str = "+14155550124";

/// Where a test's keys live, and how a new version reaches the app.
enum Store {
    Secret {
        client: aws_sdk_secretsmanager::Client,
        name: String,
    },
    InPlace,
}

/// A server whose keys start as `secret` (the secret's JSON).
async fn spawn(secret: &Value) -> (TestApp, Store) {
    let app = TestApp::spawn().await;
    let Some(aws) = app.aws.clone() else {
        let ring = KeyRing::from_secret(&secret.to_string()).unwrap();
        return (app.with_keys(ServerKeys::fixed(ring)), Store::InPlace);
    };
    let sdk = aws.moto_sdk().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = format!("planx-key-{}", shared::crypto::new_user_id());
    client
        .create_secret()
        .name(&name)
        .secret_string(secret.to_string())
        .send()
        .await
        .expect("moto creates the secret");
    let source = Arc::new(SecretKeys::new(Sdk::ready(sdk), &name));
    let keys = ServerKeys::load(source, REFRESH, app.clock_now())
        .await
        .expect("the keys are read from the secret");
    (app.with_keys(keys), Store::Secret { client, name })
}

impl Store {
    /// Puts `secret` in force, as a rotation step does: a new version of the
    /// secret, which the app reads once its refresh interval has passed.
    async fn put(&self, app: &TestApp, secret: &Value) {
        match self {
            Store::Secret { client, name } => {
                client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(secret.to_string())
                    .send()
                    .await
                    .expect("moto stores the new version");
            }
            Store::InPlace => app
                .state
                .keys
                .replace(KeyRing::from_secret(&secret.to_string()).unwrap()),
        }
        app.advance(REFRESH);
    }
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap_or_default().to_string()
}

fn key(id: &str, master: &str) -> ServerKey {
    ServerKey::new(Some(id), master.as_bytes().to_vec()).unwrap()
}

/// A browser that asked for an SMS sign-in code for `phone`, and the code.
async fn pending_sms_code(app: &TestApp, phone: &str) -> (TestApp, String) {
    let browser = app.new_browser();
    browser.ping().await.expect(200);
    let q = phone.replace('+', "%2B");
    browser
        .get(&format!("/login/sms?phone={q}"))
        .await
        .expect(204);
    let code = app.last_code(phone);
    (browser, code)
}

async fn sms_login(browser: &TestApp, phone: &str, code: &str) -> crate::support::TestResponse {
    browser
        .post("/login/sms", json!({ "phone": phone, "code": code }))
        .await
}

#[tokio::test]
async fn credentials_work_while_their_key_is_previous_and_stop_when_it_is_gone() {
    let (app, keys) = spawn(&json!({ "id": "k1", "key": OLD })).await;
    app.add_user_with_phone("ada@example.com", ADA_PHONE).await;
    app.add_user_with_phone("bob@example.com", BOB_PHONE).await;

    // Issued under k1: a session token, the page's XSRF token, two pending codes.
    app.sign_in("ada@example.com", PASSWORD).await;
    let old_token = app.cookie("TOKEN").unwrap();
    let old_xsrf = app.cookie("XSRF-TOKEN").unwrap();
    let salt = app.cookie("XSRF-SALT").unwrap();
    assert_eq!(kid(&old_token), "k1");
    assert_eq!(old_xsrf, Keys::derive(OLD.as_bytes()).xsrf_token(&salt));
    let (ada_sms, ada_code) = pending_sms_code(&app, ADA_PHONE).await;
    let (bob_sms, bob_code) = pending_sms_code(&app, BOB_PHONE).await;

    // Step 1: k2 announced as next. This app still issues under k1, and accepts
    // what a function already on k2 issues for the same session and salt.
    keys.put(
        &app,
        &json!({ "id": "k1", "key": OLD, "next": { "id": "k2", "key": NEW } }),
    )
    .await;
    app.ping().await.expect(200);
    assert_eq!(
        app.cookie("XSRF-TOKEN").unwrap(),
        old_xsrf,
        "still under k1"
    );
    let on_k2 = ServerKeys::fixed(KeyRing::new(key("k2", NEW), vec![]).unwrap());
    let claims = app
        .state
        .tokens
        .verify(&old_token, app.clock_now())
        .unwrap();
    let k2_token =
        Tokens::new("planx", on_k2.clone()).issue(&claims.sub, &claims.jti, app.clock_now(), 3600);
    app.set_cookie("TOKEN", &k2_token);
    app.set_cookie("XSRF-TOKEN", &on_k2.xsrf_token(&salt));
    app.get("/verify").await.expect(204);
    app.patch("/user", json!({ "key": "name", "name": "Ada K2" }))
        .await
        .expect(204);
    app.set_cookie("TOKEN", &old_token);
    app.set_cookie("XSRF-TOKEN", &old_xsrf);
    // A refresh code, stored by its digest under k1.
    let refresh = app.refresh_code().await;

    // Step 2: k2 current, k1 previous. Everything issued under k1 still works.
    keys.put(
        &app,
        &json!({ "id": "k2", "key": NEW, "previous": { "id": "k1", "key": OLD } }),
    )
    .await;
    app.get("/verify").await.expect(204);
    app.post("/refresh_token", json!({ "code": refresh }))
        .await
        .expect(204);
    assert_eq!(
        kid(&app.cookie("TOKEN").unwrap()),
        "k2",
        "a new token under k2"
    );
    app.set_cookie("TOKEN", &old_token);
    app.patch("/user", json!({ "key": "name", "name": "Ada K1" }))
        .await
        .expect(204);
    let r = sms_login(&ada_sms, ADA_PHONE, &ada_code).await;
    r.expect(204);
    // ...and everything new is issued under k2.
    assert_eq!(kid(&ada_sms.cookie("TOKEN").unwrap()), "k2");
    let fresh = app.new_browser();
    fresh.ping().await.expect(200);
    let fresh_salt = fresh.cookie("XSRF-SALT").unwrap();
    assert_eq!(
        fresh.cookie("XSRF-TOKEN").unwrap(),
        Keys::derive(NEW.as_bytes()).xsrf_token(&fresh_salt)
    );

    // Step 3: k1 gone. What it issued stops working; what k2 issued goes on.
    keys.put(&app, &json!({ "id": "k2", "key": NEW })).await;
    app.get("/verify")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
    app.patch("/user", json!({ "key": "name", "name": "Ada" }))
        .await
        .expect_error(403, "CSRF_FAILED", "");
    bob_sms.ping().await.expect(200); // an XSRF token under k2, so the code is what is checked
    sms_login(&bob_sms, BOB_PHONE, &bob_code)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    ada_sms.get("/verify").await.expect(204);
    ada_sms
        .patch("/user", json!({ "key": "name", "name": "Ada" }))
        .await
        .expect_error(403, "CSRF_FAILED", "");
    ada_sms.ping().await.expect(200); // the page's token under k2, same salt
    ada_sms
        .patch("/user", json!({ "key": "name", "name": "Ada" }))
        .await
        .expect(204);
}

/// A refresh code counts only under a key in force: one stored under a key
/// that is gone (or never was) is refused like a wrong one, and the right
/// code beside it still works.
#[tokio::test]
async fn a_refresh_code_under_a_key_not_in_force_is_refused() {
    let (app, _) = TestApp::signed_in().await;
    let code = app.refresh_code().await;
    let session = app.stored_session().await;
    let gone = Keys::derive(OLD.as_bytes()).code_digest("refresh", &session.id, "654321");
    let now = app.clock_now();
    let added = app
        .state
        .store
        .add_refresh_code(&session, &gone, now + 15, 5, now)
        .await
        .unwrap();
    assert_eq!(added, shared::model::RefreshIssue::Added);
    app.post("/refresh_token", json!({ "code": "654321" }))
        .await
        .expect_error(400, "INVALID_CODE", "code");
    app.post("/refresh_token", json!({ "code": code }))
        .await
        .expect(204);
}

/// moto's Secrets Manager client, when the run is on the AWS backend.
async fn moto_secrets() -> Option<(TestApp, aws_config::SdkConfig)> {
    let app = TestApp::spawn().await;
    let Some(aws) = app.aws.clone() else {
        eprintln!("Secrets Manager tests run on the AWS backend (PLANX_TEST_BACKEND=aws)");
        return None;
    };
    Some((app, aws.moto_sdk().await))
}

/// The keys `vars` name, read as a function's cold start reads them.
async fn start(
    sdk: &aws_config::SdkConfig,
    vars: &[(&str, &str)],
) -> Result<ServerKeys, shared::keys::KeyError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = shared::Config::from_vars(&vars).unwrap();
    shared::aws::server_keys(&Sdk::ready(sdk.clone()), &config, 0).await
}

#[tokio::test]
async fn a_generated_secret_is_read_by_arn_or_name_and_kept_through_an_outage() {
    let Some((_app, sdk)) = moto_secrets().await else {
        return;
    };
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    // What the template's GenerateSecretString makes: {"id":"k1"} plus a
    // generated 64-character `key` without punctuation.
    let generated = client
        .get_random_password()
        .password_length(64)
        .exclude_punctuation(true)
        .send()
        .await
        .unwrap()
        .random_password
        .unwrap();
    let name = format!("planx-key-{}", shared::crypto::new_user_id());
    let arn = client
        .create_secret()
        .name(&name)
        .secret_string(json!({ "id": "k1", "key": generated }).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();

    for id in [&arn, &name] {
        let keys = start(&sdk, &[("MODE", "release"), ("KEY_SECRET_ARN", id)])
            .await
            .unwrap();
        assert_eq!(keys.ring().current_id(), "k1");
        assert_eq!(
            keys.xsrf_token("salt"),
            Keys::derive(generated.as_bytes()).xsrf_token("salt")
        );
    }

    // A warm function keeps its keys when the secret cannot be read.
    let keys = start(
        &sdk,
        &[("KEY_SECRET_ARN", &arn), ("KEY_SECRET_REFRESH", "10")],
    )
    .await
    .unwrap();
    client
        .delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    keys.refresh(10).await;
    assert_eq!(keys.ring().current_id(), "k1");
}

#[tokio::test]
async fn a_missing_or_malformed_secret_stops_the_start_with_a_clear_message() {
    let Some((_app, sdk)) = moto_secrets().await else {
        return;
    };
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let missing = format!("planx-key-missing-{}", shared::crypto::new_user_id());
    let e = start(&sdk, &[("KEY_SECRET_ARN", &missing)])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("secret {missing}")) && e.contains("ResourceNotFoundException"),
        "{e}"
    );

    let short = "a-key-of-twenty-bytes";
    let cases = [
        ("{\"id\": \"k1\", \"key\": ".to_string(), "not JSON"),
        (
            json!({ "id": "k1", "key": short }).to_string(),
            "`key` is 21 bytes",
        ),
        (json!({ "id": "k1" }).to_string(), "`key` is missing"),
        (
            json!({ "key": NEW, "previous": { "key": short } }).to_string(),
            "`previous.key` is 21 bytes",
        ),
        (
            json!({ "current": { "id": "k1", "key": NEW } }).to_string(),
            "unknown field `current`",
        ),
    ];
    for (value, needle) in cases {
        let name = format!("planx-key-bad-{}", shared::crypto::new_user_id());
        client
            .create_secret()
            .name(&name)
            .secret_string(&value)
            .send()
            .await
            .unwrap();
        let e = start(&sdk, &[("KEY_SECRET_ARN", &name)])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("secret {name}")) && e.contains(needle),
            "{value}: {e}"
        );
        assert!(
            !e.contains(short) && !e.contains(NEW),
            "{value}: a key in {e}"
        );
    }

    let name = format!("planx-key-binary-{}", shared::crypto::new_user_id());
    client
        .create_secret()
        .name(&name)
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            NEW.as_bytes(),
        ))
        .send()
        .await
        .unwrap();
    let e = start(&sdk, &[("KEY_SECRET_ARN", &name)])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no SecretString"), "{e}");
}

/// The template's `!If [CreateKeySecret, !Ref KeySecret, !Ref KeySecretArn]`:
/// the secret the stack made, or the one the parameter names.
fn is_the_key_secret(value: &serde_yaml_ng::Value) -> bool {
    use serde_yaml_ng::Value::Tagged;
    let Tagged(t) = value else { return false };
    let refs = |v: &serde_yaml_ng::Value| match v {
        Tagged(r) if r.tag == "Ref" => r.value.as_str().map(str::to_string),
        _ => None,
    };
    let Some(args) = t.value.as_sequence() else {
        return false;
    };
    t.tag == "If"
        && args.len() == 3
        && args[0].as_str() == Some("CreateKeySecret")
        && refs(&args[1]).as_deref() == Some("KeySecret")
        && refs(&args[2]).as_deref() == Some("KeySecretArn")
}

/// Each function that holds the key (its `main` does not call
/// `run_without_key`) may read the key's secret and nothing else of Secrets
/// Manager; options may read none; no function has the key in its environment.
#[test]
fn the_template_lets_exactly_the_key_holders_read_exactly_the_key_secret() {
    let template = crate::template::template();
    let env = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert!(
        env.get("KEY").is_none(),
        "the key is not an environment variable"
    );
    assert!(
        is_the_key_secret(&env["KEY_SECRET_ARN"]),
        "{:?}",
        env["KEY_SECRET_ARN"]
    );
    for function in &planx::FUNCTIONS {
        let main = std::fs::read_to_string(format!(
            "{}/../functions/{}/src/main.rs",
            env!("CARGO_MANIFEST_DIR"),
            function.name
        ))
        .unwrap();
        let holds_key = !main.contains("run_without_key");
        let id = crate::template::logical_id(function);
        let resource = &template["Resources"][id.as_str()];
        let statements: Vec<&serde_yaml_ng::Value> = resource["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
            .filter(|s| {
                let actions = &s["Action"];
                let named = |a: &serde_yaml_ng::Value| {
                    a.as_str().is_some_and(|a| a.starts_with("secretsmanager:"))
                };
                named(actions) || actions.as_sequence().is_some_and(|a| a.iter().any(named))
            })
            .collect();
        if holds_key {
            assert_eq!(statements.len(), 1, "{id}: one statement for the key");
            let s = statements[0];
            assert_eq!(
                s["Action"].as_str(),
                Some("secretsmanager:GetSecretValue"),
                "{id}"
            );
            assert!(
                is_the_key_secret(&s["Resource"]),
                "{id}: {:?}",
                s["Resource"]
            );
        } else {
            assert!(
                statements.is_empty(),
                "{id} holds no key and reads no secret"
            );
        }
    }
}

/// The secret the stack generates is one the functions can read: the
/// template's `SecretStringTemplate` with the generated `key` added.
#[test]
fn the_generated_secret_has_the_shape_the_functions_read() {
    let template = crate::template::template();
    let generate = &template["Resources"]["KeySecret"]["Properties"]["GenerateSecretString"];
    let mut secret: Value =
        serde_json::from_str(generate["SecretStringTemplate"].as_str().unwrap()).unwrap();
    let length = generate["PasswordLength"].as_u64().unwrap() as usize;
    assert!(length >= shared::keys::MIN_KEY_BYTES, "{length}");
    let field = generate["GenerateStringKey"].as_str().unwrap();
    secret[field] = Value::String("x".repeat(length));
    let ring = KeyRing::from_secret(&secret.to_string()).unwrap();
    assert_eq!(ring.current_id(), "k1");
}
