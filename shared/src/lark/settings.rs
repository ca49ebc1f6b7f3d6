//! Lark sign-in's configuration: the app, where Lark is, where this API's
//! callback is and where the browser goes after it. Read with the rest of the
//! configuration ([`crate::config`]); every URL is checked at start.

use url::Url;

use crate::secret::Secret;

/// Lark's international open platform: `user_info` and the code exchange.
pub const LARK_API: &str = "https://open.larksuite.com";
/// Lark's international authorize page.
pub const LARK_AUTHORIZE: &str = "https://accounts.larksuite.com/open-apis/authen/v1/authorize";

/// Lark (Feishu) sign-in and linking. On only when the app id, its secret,
/// the callback and the console are all set ([`Lark::missing`]).
#[derive(Debug, Clone)]
pub struct Lark {
    /// `LARK_APP_ID`, e.g. `cli_a1b2c3d4e5f6a7b8`.
    pub app_id: String,
    /// `LARK_APP_SECRET`, or what `LARK_APP_SECRET_ARN` holds once read at start.
    pub app_secret: Option<Secret<String>>,
    /// `LARK_APP_SECRET_ARN`: the Secrets Manager secret (ARN or name) holding it.
    pub app_secret_arn: Option<String>,
    /// `LARK_REDIRECT`: this API's `GET /lark`, as the app's redirect URL in Lark's console.
    pub redirect: String,
    /// `LARK_AUTH_URL`: Lark's authorize page.
    pub auth_url: String,
    /// `LARK_API_URL`: Lark's open platform, without a path.
    pub api_url: String,
    /// `CONSOLE_URL`: where the callback sends the browser, ending in `/`
    /// (`https://console.example.com/`, or `.../#/` for a hash-routed console).
    pub console_url: String,
    /// `LARK_TIMEOUT_MS`: the most each call to Lark may take.
    pub timeout_ms: u64,
}

impl Lark {
    /// The variables still needed for Lark sign-in; empty when it is on.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = vec![];
        if self.app_id.is_empty() {
            missing.push("LARK_APP_ID");
        }
        if self.app_secret.is_none() {
            missing.push(if self.app_secret_arn.is_some() {
                "LARK_APP_SECRET_ARN (unreadable at start)"
            } else {
                "LARK_APP_SECRET"
            });
        }
        if self.redirect.is_empty() {
            missing.push("LARK_REDIRECT");
        }
        if self.console_url.is_empty() {
            missing.push("CONSOLE_URL");
        }
        missing
    }

    /// Where a console starts a sign-in or link: `GET /lark/authorize` beside
    /// the callback (`{LARK_REDIRECT}/authorize`); empty without a callback.
    pub fn start_url(&self) -> String {
        if self.redirect.is_empty() {
            String::new()
        } else {
            format!("{}/authorize", self.redirect)
        }
    }
}

/// Why a URL setting is refused (the caller names the variable).
fn web_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("is not an absolute URL ({e})"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must be https (http only on localhost)".into()),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if url.fragment().is_some() {
        return Err("must have no #fragment".into());
    }
    Ok(url)
}

/// `LARK_API_URL`: a base without path, query or fragment (trailing `/` dropped).
pub fn api_url(raw: &str) -> Result<String, String> {
    let url = web_url(raw)?;
    if url.query().is_some() || url.path() != "/" {
        return Err("must be a bare origin such as https://open.larksuite.com".into());
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// `LARK_AUTH_URL`: the authorize page, without a query (this API adds its own).
pub fn auth_url(raw: &str) -> Result<String, String> {
    let url = web_url(raw)?;
    if url.query().is_some() {
        return Err("must have no query".into());
    }
    if url.path().ends_with("/authen/v1/index") {
        return Err(format!(
            "is Lark's retired `index` page; use the authorize page, e.g. {LARK_AUTHORIZE}"
        ));
    }
    Ok(raw.to_string())
}

/// `LARK_REDIRECT`: this API's callback, `.../lark`, without query.
pub fn redirect(raw: &str) -> Result<String, String> {
    let url = web_url(raw)?;
    if url.query().is_some() || !url.path().ends_with("/lark") {
        return Err(
            "must be this API's callback, ending in /lark (e.g. https://api.example.com/lark)"
                .into(),
        );
    }
    Ok(raw.to_string())
}

/// `CONSOLE_URL`: an absolute URL, or a path on the API's own origin
/// (`/console/#/`), ending in `/` so the routes can be appended.
pub fn console_url(raw: &str) -> Result<String, String> {
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must have no spaces or control characters".into());
    }
    if !raw.ends_with('/') {
        return Err("must end in / (or #/ for a hash-routed console) so routes can follow".into());
    }
    if raw.starts_with('/') {
        if raw.starts_with("//") {
            return Err("must be an absolute URL or a path starting with a single /".into());
        }
        return Ok(raw.to_string());
    }
    let url = match Url::parse(raw) {
        Ok(url) => url,
        Err(e) => return Err(format!("is not an absolute URL or path ({e})")),
    };
    // A fragment is the console's route (`#/`); check the rest.
    let mut base = url.clone();
    base.set_fragment(None);
    web_url(base.as_str())?;
    Ok(raw.to_string())
}

/// Lark and Feishu apps are separate brands: an app of one cannot sign in
/// through the other's hosts (Lark's error 20046).
pub fn same_brand(api: &str, auth: &str) -> Result<(), String> {
    let brand = |u: &str| {
        let host = Url::parse(u).ok()?.host_str()?.to_string();
        if host.ends_with("feishu.cn") {
            Some("Feishu")
        } else if host.ends_with("larksuite.com") {
            Some("Lark")
        } else {
            None
        }
    };
    match (brand(api), brand(auth)) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "LARK_API_URL is {a}'s and LARK_AUTH_URL {b}'s: use one brand's hosts"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            api_url("https://open.feishu.cn/").unwrap(),
            "https://open.feishu.cn"
        );
        assert_eq!(
            api_url("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        for bad in [
            "http://open.larksuite.com",
            "https://open.larksuite.com/open-apis",
            "ftp://x",
            "open.larksuite.com",
        ] {
            assert!(api_url(bad).is_err(), "{bad}");
        }
        assert!(auth_url(LARK_AUTHORIZE).is_ok());
        let e = auth_url("https://open.feishu.cn/open-apis/authen/v1/index").unwrap_err();
        assert!(e.contains("retired"), "{e}");
        assert!(auth_url("https://accounts.larksuite.com/x?a=1").is_err());
        assert!(redirect("https://api.example.com/lark").is_ok());
        assert!(redirect("https://console.example.com/api/lark").is_ok());
        for bad in [
            "https://api.example.com/",
            "https://api.example.com/lark?x=1",
            "https://api.example.com/lark#x",
        ] {
            assert!(redirect(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn console_urls_end_where_a_route_follows() {
        for good in [
            "https://console.example.com/",
            "https://console.example.com/#/",
            "https://console.example.com/app/?api=https%3A%2F%2Fapi.example.com#/",
            "/console/#/",
            "http://localhost:4200/",
        ] {
            assert_eq!(console_url(good).unwrap(), good);
        }
        for bad in [
            "https://console.example.com",
            "//evil.example/",
            "javascript:alert(1)//",
            "http://console.example.com/",
            "https://console.example.com/ x/",
            "console/",
        ] {
            assert!(console_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn brands_are_not_mixed() {
        assert!(same_brand(LARK_API, LARK_AUTHORIZE).is_ok());
        assert!(
            same_brand(
                "https://open.feishu.cn",
                "https://accounts.feishu.cn/open-apis/authen/v1/authorize"
            )
            .is_ok()
        );
        let e = same_brand("https://open.feishu.cn", LARK_AUTHORIZE).unwrap_err();
        assert!(e.contains("Feishu") && e.contains("Lark"), "{e}");
        assert!(same_brand("http://127.0.0.1:1", LARK_AUTHORIZE).is_ok());
    }
}
