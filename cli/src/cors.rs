//! CORS for `planx serve --cors-origin`: the answers the gateway gives from the
//! `x-amazon-apigateway-cors` block of `template.yaml`, so a console on another
//! origin can be developed against the local server without a proxy. The tests
//! below read that block and fail when the two disagree.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `allowMethods`: the seed's methods (no PUT).
const ALLOW_METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PATCH, Method::DELETE];
/// `allowHeaders`: JSON bodies and the CSRF header.
const ALLOW_HEADERS: [&str; 2] = ["content-type", "x-xsrf-token"];
/// `exposeHeaders`: how long a limit lasts, and the CSRF token `GET /` returns
/// for a console that cannot read the `XSRF-TOKEN` cookie (another site).
const EXPOSE_HEADERS: [&str; 2] = ["retry-after", "x-xsrf-token"];
/// `maxAge`: how long a browser may reuse a preflight answer.
const MAX_AGE: Duration = Duration::from_secs(600);

/// One `--cors-origin` value, checked: `scheme://host[:port]` and nothing else,
/// since browsers compare origins exactly and credentials forbid a wildcard.
pub fn origin(value: &str) -> Result<HeaderValue, String> {
    let bad = |why: &str| {
        format!(
            "--cors-origin {value:?}: {why}; expected an origin such as https://console.example.com"
        )
    };
    let lower = value.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| bad("the scheme must be http or https"))?;
    if rest.is_empty() {
        return Err(bad("the host is missing"));
    }
    if rest.contains(['/', '?', '#', '@', '*', ' ']) {
        return Err(bad(
            "only scheme, host and port (no path, trailing slash, wildcard or credentials)",
        ));
    }
    HeaderValue::from_str(&lower).map_err(|_| bad("not a valid header value"))
}

/// The CORS layer for these origins (credentialed, as the gateway's).
pub fn layer(origins: Vec<HeaderValue>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods(ALLOW_METHODS)
        .allow_headers(ALLOW_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSE_HEADERS.map(HeaderName::from_static))
        .max_age(MAX_AGE)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use serde_yaml_ng::Value;
    use tower::ServiceExt;

    use super::*;

    const CONSOLE: &str = "https://console.example.test";

    /// `Resources.HttpApi.Properties.DefinitionBody.x-amazon-apigateway-cors`.
    fn gateway_cors() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
        let source = std::fs::read_to_string(path).expect("template.yaml is readable");
        let template: Value =
            serde_yaml_ng::from_str(&source).expect("template.yaml is YAML (SAM tags included)");
        template["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-cors"]
            .clone()
    }

    /// A list of the block as a lowercase set (header names and methods are
    /// compared without case, as the gateway and browsers do).
    fn set_of(value: &Value, key: &str) -> BTreeSet<String> {
        value[key]
            .as_sequence()
            .unwrap_or_else(|| panic!("x-amazon-apigateway-cors.{key} is a list"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_ascii_lowercase())
            .collect()
    }

    /// A comma-separated response header as a lowercase set.
    fn header_set(response: &axum::response::Response, name: &str) -> BTreeSet<String> {
        response
            .headers()
            .get_all(name)
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(','))
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn one(response: &axum::response::Response, name: &str) -> Option<String> {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The served app as `planx serve --cors-origin CONSOLE` builds it.
    fn app() -> axum::Router {
        crate::serve::test_app(vec![origin(CONSOLE).unwrap()], None)
    }

    #[tokio::test]
    async fn preflight_answers_as_the_gateway_is_configured() {
        let cors = gateway_cors();
        let allowed = match &cors["allowOrigins"] {
            Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
            _ => None,
        };
        assert_eq!(
            allowed,
            Some("ConsoleOrigins"),
            "the gateway allows the ConsoleOrigins parameter, as --cors-origin does"
        );
        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .uri("/user")
            .header(header::ORIGIN, CONSOLE)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PATCH")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-xsrf-token",
            )
            .body(Body::empty())
            .unwrap();
        let response = app().oneshot(preflight).await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        assert_eq!(
            one(&response, "access-control-allow-origin").as_deref(),
            Some(CONSOLE)
        );
        let credentials = cors["allowCredentials"].as_bool().expect("a boolean");
        assert_eq!(
            one(&response, "access-control-allow-credentials").as_deref(),
            credentials.then_some("true")
        );
        assert_eq!(
            header_set(&response, "access-control-allow-methods"),
            set_of(&cors, "allowMethods")
        );
        assert_eq!(
            header_set(&response, "access-control-allow-headers"),
            set_of(&cors, "allowHeaders")
        );
        let max_age = cors["maxAge"].as_u64().expect("a number");
        assert_eq!(
            one(&response, "access-control-max-age"),
            Some(max_age.to_string())
        );
    }

    #[tokio::test]
    async fn credentialed_requests_see_the_exposed_headers() {
        let cors = gateway_cors();
        let get = Request::builder()
            .uri("/")
            .header(header::ORIGIN, CONSOLE)
            .body(Body::empty())
            .unwrap();
        let response = app().oneshot(get).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            one(&response, "access-control-allow-origin").as_deref(),
            Some(CONSOLE)
        );
        assert_eq!(
            one(&response, "access-control-allow-credentials").as_deref(),
            Some("true")
        );
        let exposed = header_set(&response, "access-control-expose-headers");
        assert_eq!(exposed, set_of(&cors, "exposeHeaders"));
        for name in &exposed {
            if name != "retry-after" {
                assert!(
                    response.headers().contains_key(name.as_str()),
                    "GET / sends the exposed header {name}"
                );
            }
        }
    }

    #[tokio::test]
    async fn other_origins_get_no_grant() {
        for method in [Method::OPTIONS, Method::GET] {
            let mut request = Request::builder()
                .method(method.clone())
                .uri("/")
                .header(header::ORIGIN, "https://evil.example.test");
            if method == Method::OPTIONS {
                request = request.header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST");
            }
            let response = app()
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            // Without Access-Control-Allow-Origin the browser shows the page
            // nothing (tower-http still sends Allow-Credentials, which is moot).
            assert_eq!(one(&response, "access-control-allow-origin"), None);
        }
    }

    #[tokio::test]
    async fn off_by_default() {
        let get = Request::builder()
            .uri("/")
            .header(header::ORIGIN, CONSOLE)
            .body(Body::empty())
            .unwrap();
        let response = crate::serve::test_app(vec![], None)
            .oneshot(get)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(one(&response, "access-control-allow-origin"), None);
    }

    #[test]
    fn origins_are_checked() {
        assert_eq!(
            origin("https://Console.Example.com:8443").unwrap(),
            "https://console.example.com:8443"
        );
        assert_eq!(
            origin("http://localhost:4200").unwrap(),
            "http://localhost:4200"
        );
        for bad in [
            "*",
            "console.example.com",
            "https://",
            "https://console.example.com/",
            "https://console.example.com/app",
            "https://*.example.com",
            "ftp://example.com",
        ] {
            let err = origin(bad).unwrap_err();
            assert!(err.contains("--cors-origin"), "{bad}: {err}");
        }
    }
}
