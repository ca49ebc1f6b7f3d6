//! The Lark app secret: read at cold start from the Secrets Manager secret
//! `LARK_APP_SECRET_ARN` names (on moto, through the real SDK), and in the
//! template a NoEcho parameter kept in a secret that only the session
//! function may read.

use serde_yaml_ng::Value;
use shared::aws::Sdk;
use shared::config::Config;

use crate::support::TestApp;

/// `lark_secret` as a cold start calls it, for a configuration naming `id`.
async fn read(sdk: &aws_config::SdkConfig, id: &str) -> Option<String> {
    let vars = vec![("LARK_APP_SECRET_ARN".to_string(), id.to_string())];
    let config = Config::from_vars(&vars).unwrap();
    let secret = shared::aws::lark_secret(&Sdk::ready(sdk.clone()), &config.lark).await;
    secret.map(|s| s.expose().clone())
}

#[tokio::test]
async fn the_app_secret_is_read_from_its_secret_by_arn_or_name() {
    let app = TestApp::spawn().await;
    let Some(aws) = app.aws.clone() else {
        eprintln!("Secrets Manager tests run on the AWS backend (PLANX_TEST_BACKEND=aws)");
        return;
    };
    let sdk = aws.moto_sdk().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = format!("planx-lark-{}", shared::crypto::new_user_id());
    let arn = client
        .create_secret()
        .name(&name)
        .secret_string("lark-app-secret-from-the-stack\n")
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    for id in [&arn, &name] {
        let secret = read(&sdk, id).await;
        assert_eq!(secret.as_deref(), Some("lark-app-secret-from-the-stack"));
    }
    // Missing or empty: Lark stays off (the routes say so), the function starts.
    let missing = format!("planx-lark-missing-{}", shared::crypto::new_user_id());
    assert_eq!(read(&sdk, &missing).await, None);
    let empty = format!("planx-lark-empty-{}", shared::crypto::new_user_id());
    client
        .create_secret()
        .name(&empty)
        .secret_string(" ")
        .send()
        .await
        .unwrap();
    assert_eq!(read(&sdk, &empty).await, None);
    let vars = vec![("LARK_APP_SECRET_ARN".to_string(), missing)];
    let config = Config::from_vars(&vars).unwrap();
    assert!(
        config
            .lark
            .missing()
            .contains(&"LARK_APP_SECRET_ARN (unreadable at start)")
    );
}

fn tagged<'v>(value: &'v Value, tag: &str) -> Option<&'v Value> {
    match value {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

/// `!Ref name`?
fn is_ref(value: &Value, name: &str) -> bool {
    tagged(value, "Ref").and_then(Value::as_str) == Some(name)
}

#[test]
fn only_the_session_function_may_read_the_lark_secret() {
    let template = crate::template::template();
    let parameter = &template["Parameters"]["LarkAppSecret"];
    assert_eq!(parameter["NoEcho"].as_bool(), Some(true));
    assert_eq!(parameter["Default"].as_str(), Some(""));
    let secret = &template["Resources"]["LarkSecret"];
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    assert_eq!(secret["Condition"].as_str(), Some("HasLarkSecret"));
    assert!(is_ref(
        &secret["Properties"]["SecretString"],
        "LarkAppSecret"
    ));
    assert!(
        template["Globals"]["Function"]["Environment"]["Variables"]
            .get("LARK_APP_SECRET_ARN")
            .is_none(),
        "not every function's"
    );

    for function in &planx::FUNCTIONS {
        let id = crate::template::logical_id(function);
        let properties = &template["Resources"][id.as_str()]["Properties"];
        // Statements granted only when the stack holds a Lark secret.
        let grants: Vec<&Value> = properties["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
            .filter_map(|s| tagged(s, "If")?.as_sequence())
            .filter(|args| args[0].as_str() == Some("HasLarkSecret"))
            .map(|args| &args[1])
            .collect();
        let env = properties["Environment"]["Variables"].get("LARK_APP_SECRET_ARN");
        if function.name != "session" {
            assert!(
                grants.is_empty() && env.is_none(),
                "{id} has no Lark secret"
            );
            continue;
        }
        let [grant] = grants.as_slice() else {
            panic!("{id}: one grant for the Lark secret, got {grants:?}");
        };
        assert_eq!(
            grant["Action"].as_str(),
            Some("secretsmanager:GetSecretValue")
        );
        assert!(is_ref(&grant["Resource"], "LarkSecret"), "only that secret");
        let arn = tagged(env.expect("LARK_APP_SECRET_ARN"), "If")
            .and_then(Value::as_sequence)
            .expect("!If [HasLarkSecret, !Ref LarkSecret, \"\"]");
        assert_eq!(arn[0].as_str(), Some("HasLarkSecret"));
        assert!(is_ref(&arn[1], "LarkSecret"));
        assert_eq!(arn[2].as_str(), Some(""));
    }
}
