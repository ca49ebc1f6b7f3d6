//! Every cookie the API sets, with and without `COOKIE_DOMAIN`: only
//! `XSRF-TOKEN`, which the page must read, carries the domain; `TOKEN`,
//! `XSRF-SALT` and `DEVICE` are HttpOnly and host-only. With a domain set,
//! `TOKEN` and `XSRF-SALT` also delete the `Domain` twins they had before.

use serde_json::json;

use crate::support::{PASSWORD, TestApp, TestResponse, attributes};

const DOMAIN: &str = "example.com";

/// What one response set: (the request, the cookie's name, its `Set-Cookie` headers).
type Seen = (&'static str, &'static str, Vec<String>);

fn seen(into: &mut Vec<Seen>, request: &'static str, r: &TestResponse, names: &[&'static str]) {
    for &name in names {
        into.push((request, name, r.set_cookies(name)));
    }
}

/// Every response that sets a cookie, in one browser's story.
async fn every_cookie_set(app: &TestApp) -> Vec<Seen> {
    app.add_user("ada@example.com").await;
    let mut all = vec![];
    let r = app.ping().await;
    seen(&mut all, "GET /", &r, &["XSRF-SALT", "XSRF-TOKEN"]);
    let r = app.login("ada@example.com", PASSWORD).await;
    r.expect(204);
    seen(&mut all, "POST /login", &r, &["TOKEN", "DEVICE"]);
    let code = app.refresh_code().await;
    let r = app.post("/refresh_token", json!({ "code": code })).await;
    r.expect(204);
    seen(&mut all, "POST /refresh_token", &r, &["TOKEN"]);
    let id = app.session_key();
    let r = app.delete(&format!("/user/sessions/{id}")).await;
    r.expect(204);
    seen(&mut all, "DELETE /user/sessions/{id}", &r, &["TOKEN"]);
    app.login("ada@example.com", PASSWORD).await.expect(204);
    let r = app.post("/logout", json!({})).await;
    r.expect(204);
    seen(&mut all, "POST /logout", &r, &["TOKEN"]);
    all
}

#[tokio::test]
async fn only_xsrf_token_carries_the_cookie_domain() {
    for domain in ["", DOMAIN] {
        let app = TestApp::spawn_with(&[("COOKIE_DOMAIN", domain)]).await;
        for (request, name, headers) in every_cookie_set(&app).await {
            let at = format!("{request}, {name}, COOKIE_DOMAIN={domain:?}: {headers:?}");
            let (set, twins) = headers.split_last().unwrap_or_else(|| panic!("{at}"));
            let attrs = attributes(set);
            let has = |a: &str| attrs.iter().any(|x| x == a);
            for a in ["Path=/", "Secure", "SameSite=Lax"] {
                assert!(has(a), "{at} lacks {a}");
            }
            let reads = name == "XSRF-TOKEN";
            assert_eq!(has("HttpOnly"), !reads, "{at}");
            let domain_attr = attrs.iter().find(|a| a.starts_with("Domain="));
            match (reads && !domain.is_empty(), domain_attr) {
                (true, Some(d)) => assert_eq!(d, &format!("Domain={DOMAIN}"), "{at}"),
                (false, None) => {}
                _ => panic!("{at}: the wrong Domain"),
            }
            // A browser that still holds the Domain twin of a formerly
            // domain-wide cookie has it deleted, before the new one is set.
            let formerly = ["TOKEN", "XSRF-SALT"].contains(&name);
            if formerly && !domain.is_empty() {
                let [twin] = twins else {
                    panic!("{at}: no twin deleted")
                };
                let expected = format!(
                    "{name}=; Path=/; Max-Age=0; SameSite=Lax; Domain={DOMAIN}; HttpOnly; Secure"
                );
                assert_eq!(twin, &expected, "{at}");
            } else {
                assert!(twins.is_empty(), "{at}");
            }
        }
        // The session works through all of it: the last login's was ended by logout.
        app.get("/verify").await.expect(401);
        app.login("ada@example.com", PASSWORD).await.expect(204);
        app.get("/verify").await.expect(204);
    }
}
