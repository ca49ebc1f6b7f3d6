//! Runtime configuration, read from environment variables once at start and validated.
//! Every variable is listed in the README with its default.

use serde_json::{Value, json};

pub use crate::keys::MIN_KEY_BYTES;
use crate::keys::{KeyRing, ServerKey};
use crate::model::{Backoff, Guessing, Rule};
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Debug,
    Release,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Argon2Params {
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

/// Limits on guessing secrets and on sending codes (the README's "Throttling").
#[derive(Debug, Clone)]
pub struct Limits {
    pub guessing: Guessing,
    pub code_per_recipient: Rule,
    pub code_per_ip: Rule,
    /// How long a device cookie stays valid, seconds.
    pub device_ttl: i64,
    /// The least time `GET /forget_code` and `GET /login/sms` take, so that an
    /// account's code send does not show in the answer's timing; 0 turns it off.
    pub code_floor_ms: u64,
}

/// Lifetimes in seconds.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    pub token: i64,
    pub session: i64,
    pub sms_code: i64,
    pub mail_code: i64,
    pub totp_bind: i64,
    pub refresh_code: i64,
    /// How recent a sign-in must be for a sensitive change (`REAUTH_WINDOW`).
    pub reauth: i64,
}

/// What `GET /options?type=upload` answers.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The storage's kind (the weplanx console uploads to `cos` itself).
    pub kind: String,
    pub url: String,
    /// The largest upload, in kilobytes: the unit of the console's upload
    /// component (ng-zorro's `nzSize`).
    pub limit_kb: u64,
}

pub use crate::lark::settings::Lark;

/// Where the server keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `KEY` (current) and `KEY_PREVIOUS` (still accepted), each under the id
    /// derived from it; or a throwaway key (debug mode without either).
    Env(KeyRing),
    /// `KEY_SECRET_ARN`: a Secrets Manager secret (ARN or name), read at start
    /// and again every `refresh` seconds (`KEY_SECRET_REFRESH`).
    Secret { id: String, refresh: i64 },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub namespace: String,
    /// This node's name, answered by `GET /`.
    pub name: String,
    pub key: KeySource,
    /// The key was generated at start (debug mode without `KEY`, or a function
    /// that holds no key).
    pub key_generated: bool,
    pub cookie_secure: bool,
    pub cookie_same_site: SameSite,
    /// `Domain` for `XSRF-TOKEN` only, so a console on a sibling host
    /// (console.example.com beside api.example.com) can read it; empty: host-only.
    /// Every other cookie is host-only whatever this says.
    pub cookie_domain: String,
    pub argon2: Argon2Params,
    pub limits: Limits,
    pub lifetimes: Lifetimes,
    pub table_name: String,
    pub sms_sender_id: String,
    pub mail_from: String,
    pub upload: Upload,
    pub lark: Lark,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Reads one variable; `None` when unset. Injected so tests never touch the process environment.
pub trait Vars {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Vars for Env {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Vars for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

impl Vars for Vec<(String, String)> {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

struct Reader<'a> {
    vars: &'a dyn Vars,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn string(&self, name: &str, default: &str) -> String {
        self.vars.var(name).unwrap_or_else(|| default.to_string())
    }

    fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let Some(raw) = self.vars.var(name) else {
            return default;
        };
        match raw.trim().parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                self.errors.push(format!(
                    "{name} must be a number from {min} to {max}, got {raw:?}"
                ));
                default
            }
        }
    }

    fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.vars.var(name).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => false,
            Some(v) => {
                self.errors
                    .push(format!("{name} must be true or false, got {v:?}"));
                default
            }
        }
    }
}

fn throwaway_key() -> KeySource {
    KeySource::Env(KeyRing::single(&crate::crypto::random_bytes::<32>()))
}

/// `KEY_SECRET_ARN`, or `KEY` and `KEY_PREVIOUS`: one place or the other.
fn read_key(r: &mut Reader, mode: Mode) -> (KeySource, bool) {
    let secret = r.vars.var("KEY_SECRET_ARN");
    let refresh = r.number("KEY_SECRET_REFRESH", 300, 10, 86_400);
    let current = r.vars.var("KEY");
    let previous = r.vars.var("KEY_PREVIOUS");
    if let Some(id) = secret {
        if current.is_some() || previous.is_some() {
            r.errors.push(
                "KEY_SECRET_ARN and KEY (or KEY_PREVIOUS) are both set: the keys come from one or the other".into(),
            );
        }
        return (KeySource::Secret { id, refresh }, false);
    }
    let Some(current) = current else {
        if previous.is_some() {
            r.errors
                .push("KEY_PREVIOUS is set without KEY (the current key)".into());
        } else if mode == Mode::Release {
            r.errors.push(format!(
                "KEY (at least {MIN_KEY_BYTES} random bytes) or KEY_SECRET_ARN is required in release mode"
            ));
        }
        return (throwaway_key(), mode == Mode::Debug);
    };
    let mut key = |name: &str, value: String| {
        if mode == Mode::Release && value.len() < MIN_KEY_BYTES {
            r.errors.push(format!(
                "{name} must be at least {MIN_KEY_BYTES} bytes in release mode"
            ));
        }
        ServerKey::new(None, value.into_bytes()).expect("a derived id is valid")
    };
    let current = key("KEY", current);
    let previous = previous.map(|p| key("KEY_PREVIOUS", p));
    match KeyRing::new(current, previous.into_iter().collect()) {
        Ok(ring) => (KeySource::Env(ring), false),
        Err(_) => {
            r.errors.push("KEY_PREVIOUS is the same key as KEY".into());
            (throwaway_key(), false)
        }
    }
}

/// Lark sign-in: every URL checked, the secret from one place or the other.
fn read_lark(r: &mut Reader) -> Lark {
    use crate::lark::settings;
    let mut url = |name: &str, default: &str, check: fn(&str) -> Result<String, String>| {
        let raw = r.string(name, default);
        if raw.is_empty() {
            return raw;
        }
        check(&raw).unwrap_or_else(|why| {
            r.errors.push(format!("{name} {why}, got {raw:?}"));
            raw
        })
    };
    let api_url = url("LARK_API_URL", settings::LARK_API, settings::api_url);
    let auth_url = url(
        "LARK_AUTH_URL",
        settings::LARK_AUTHORIZE,
        settings::auth_url,
    );
    let redirect = url("LARK_REDIRECT", "", settings::redirect);
    let console_url = url("CONSOLE_URL", "", settings::console_url);
    if let Err(why) = settings::same_brand(&api_url, &auth_url) {
        r.errors.push(why);
    }
    let app_secret = r.vars.var("LARK_APP_SECRET").map(Secret::new);
    let app_secret_arn = r.vars.var("LARK_APP_SECRET_ARN");
    if app_secret.is_some() && app_secret_arn.is_some() {
        r.errors.push(
            "LARK_APP_SECRET and LARK_APP_SECRET_ARN are both set: the app secret comes from one or the other".into(),
        );
    }
    Lark {
        app_id: r.string("LARK_APP_ID", ""),
        app_secret,
        app_secret_arn,
        redirect,
        auth_url,
        api_url,
        console_url,
        timeout_ms: r.number("LARK_TIMEOUT_MS", 3000, 100, 10_000),
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Env)
    }

    /// The configuration of a function that holds no server key (options: it
    /// signs and checks nothing): the key variables are not read, and a
    /// throwaway key stands in.
    pub fn from_env_without_key() -> Result<Self, ConfigError> {
        Self::read(&Env, false)
    }

    /// Builds and validates the configuration; every problem is reported at once.
    pub fn from_vars(vars: &dyn Vars) -> Result<Self, ConfigError> {
        Self::read(vars, true)
    }

    fn read(vars: &dyn Vars, wants_key: bool) -> Result<Self, ConfigError> {
        let mut r = Reader {
            vars,
            errors: vec![],
        };
        let mode = match r.string("MODE", "debug").to_ascii_lowercase().as_str() {
            "release" => Mode::Release,
            "debug" | "dev" | "development" => Mode::Debug,
            other => {
                r.errors
                    .push(format!("MODE must be debug or release, got {other:?}"));
                Mode::Debug
            }
        };
        let (key, key_generated) = if wants_key {
            read_key(&mut r, mode)
        } else {
            (throwaway_key(), true)
        };
        let same_site = match r
            .string("COOKIE_SAMESITE", "lax")
            .to_ascii_lowercase()
            .as_str()
        {
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            "none" => SameSite::None,
            other => {
                r.errors.push(format!(
                    "COOKIE_SAMESITE must be lax, strict or none, got {other:?}"
                ));
                SameSite::Lax
            }
        };
        let cookie_secure = r.flag("COOKIE_SECURE", true);
        if same_site == SameSite::None && !cookie_secure {
            r.errors.push(
                "COOKIE_SAMESITE=none needs COOKIE_SECURE=true (browsers refuse it otherwise)"
                    .into(),
            );
        }
        let cookie_domain = r.string("COOKIE_DOMAIN", "");
        if !cookie_domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            r.errors.push(format!(
                "COOKIE_DOMAIN must be a domain name, got {cookie_domain:?}"
            ));
        }
        let namespace = r.string("NAMESPACE", "planx");
        if namespace.trim().is_empty() || namespace.contains(':') {
            r.errors
                .push("NAMESPACE must be non-empty and contain no ':'".into());
        }
        let name = vars
            .var("NAME")
            .or_else(|| vars.var("AWS_LAMBDA_FUNCTION_NAME"))
            .or_else(|| vars.var("HOSTNAME"))
            .unwrap_or_else(|| namespace.clone());
        let argon2 = Argon2Params {
            m_cost: r.number("ARGON2_M_COST", 19_456, 8, 4_194_304),
            t_cost: r.number("ARGON2_T_COST", 2, 1, 64),
            p_cost: r.number("ARGON2_P_COST", 1, 1, 64),
        };
        let cooldown = r.number("CODE_COOLDOWN", 60, 0, 86_400);
        let backoff = Backoff {
            after: r.number("LOGIN_BACKOFF_AFTER", 5, 1, 1000),
            max: r.number("LOGIN_BACKOFF_MAX", 900, 1, 86_400),
            window: r.number("LOGIN_FAILURE_WINDOW", 3600, 1, 30 * 86_400),
        };
        if backoff.window < backoff.max {
            // Otherwise waiting out the longest back-off would also forget the failures.
            r.errors.push(format!(
                "LOGIN_FAILURE_WINDOW ({}) must be at least LOGIN_BACKOFF_MAX ({})",
                backoff.window, backoff.max
            ));
        }
        let guessing = Guessing {
            backoff,
            account: Rule {
                window: 86_400,
                max: r.number("ACCOUNT_FAILURES_PER_DAY", 5, 1, 1_000_000),
                cooldown: 0,
            },
            ip: Rule {
                window: 3600,
                max: r.number("IP_LOGIN_FAILURES_PER_HOUR", 100, 1, 1_000_000),
                cooldown: 0,
            },
            code_attempts: r.number("CODE_ATTEMPTS", 5, 1, 100),
        };
        let limits = Limits {
            guessing,
            code_per_recipient: Rule {
                window: 3600,
                max: r.number("CODES_PER_HOUR", 5, 1, 1000),
                cooldown,
            },
            code_per_ip: Rule {
                window: 3600,
                max: r.number("IP_CODES_PER_HOUR", 20, 1, 1_000_000),
                cooldown: 0,
            },
            device_ttl: r.number("DEVICE_TTL", 365 * 86_400, 60, 400 * 86_400),
            code_floor_ms: r.number("CODE_RESPONSE_FLOOR_MS", 1000, 0, 10_000),
        };
        let lifetimes = Lifetimes {
            token: r.number("TOKEN_TTL", 7200, 60, 30 * 86_400),
            session: r.number("SESSION_TTL", 3600, 60, 30 * 86_400),
            sms_code: 120,
            mail_code: 600,
            totp_bind: 300,
            refresh_code: 15,
            reauth: r.number("REAUTH_WINDOW", 600, 60, 86_400),
        };
        let upload = Upload {
            kind: r.string("UPLOAD_TYPE", "s3"),
            url: r.string("UPLOAD_URL", ""),
            limit_kb: r.number("UPLOAD_LIMIT_KB", 5120, 0, u32::MAX.into()),
        };
        if vars.var("UPLOAD_LIMIT").is_some() {
            r.errors.push(
                "UPLOAD_LIMIT (bytes) is now UPLOAD_LIMIT_KB, in kilobytes: 5120 for 5 MiB".into(),
            );
        }
        let lark = read_lark(&mut r);
        let config = Config {
            mode,
            name,
            key,
            key_generated,
            cookie_secure,
            cookie_same_site: same_site,
            cookie_domain,
            argon2,
            limits,
            lifetimes,
            table_name: r.string("TABLE_NAME", "planx"),
            sms_sender_id: r.string("SMS_SENDER_ID", ""),
            mail_from: r.string("MAIL_FROM", "no-reply@example.com"),
            upload,
            lark,
            namespace,
        };
        if r.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(r.errors.join("; ")))
        }
    }

    /// The configuration as `GET /` shows it outside release mode: secrets redacted.
    pub fn redacted(&self) -> Value {
        json!({
            "mode": match self.mode { Mode::Debug => "debug", Mode::Release => "release" },
            "namespace": self.namespace,
            "name": self.name,
            "key": "[redacted]",
            "key_source": match self.key { KeySource::Env(_) => "env", KeySource::Secret { .. } => "secrets-manager" },
            "key_generated": self.key_generated,
            "cookie": { "secure": self.cookie_secure, "same_site": self.cookie_same_site.as_str(), "domain": self.cookie_domain },
            "argon2": { "m_cost": self.argon2.m_cost, "t_cost": self.argon2.t_cost, "p_cost": self.argon2.p_cost },
            "limits": {
                "guessing": self.limits.guessing,
                "code_per_recipient": self.limits.code_per_recipient,
                "code_per_ip": self.limits.code_per_ip,
                "device_ttl": self.limits.device_ttl,
                "code_floor_ms": self.limits.code_floor_ms,
            },
            "lifetimes": {
                "token": self.lifetimes.token,
                "session": self.lifetimes.session,
                "sms_code": self.lifetimes.sms_code,
                "mail_code": self.lifetimes.mail_code,
                "totp_bind": self.lifetimes.totp_bind,
                "refresh_code": self.lifetimes.refresh_code,
                "reauth": self.lifetimes.reauth,
            },
            "table_name": self.table_name,
            "sms_sender_id": self.sms_sender_id,
            "mail_from": self.mail_from,
            "upload": { "type": self.upload.kind, "url": self.upload.url, "limit_kb": self.upload.limit_kb },
            "lark": {
                "app_id": self.lark.app_id,
                "app_secret": if self.lark.app_secret.is_some() { "[redacted]" } else { "" },
                "app_secret_arn": self.lark.app_secret_arn,
                "redirect": self.lark.redirect,
                "auth_url": self.lark.auth_url,
                "api_url": self.lark.api_url,
                "console_url": self.lark.console_url,
                "timeout_ms": self.lark.timeout_ms,
                "off_until_set": self.lark.missing(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_defaults_generate_a_key() {
        let c = Config::from_vars(&[("HOSTNAME", "")]).unwrap();
        assert_eq!(c.mode, Mode::Debug);
        assert!(c.key_generated);
        assert!(matches!(c.key, KeySource::Env(_)));
        assert_eq!(c.argon2.m_cost, 19_456);
        let g = c.limits.guessing;
        assert_eq!(
            (g.backoff.after, g.backoff.max, g.backoff.window),
            (5, 900, 3600)
        );
        assert_eq!(
            (g.account.max, g.account.window, g.ip.max),
            (5, 86_400, 100)
        );
        assert_eq!(
            (c.limits.device_ttl, c.limits.code_floor_ms),
            (31_536_000, 1000)
        );
    }

    #[test]
    fn release_refuses_missing_or_short_key() {
        let e = Config::from_vars(&[("MODE", "release")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("KEY (at least 32 random bytes) or KEY_SECRET_ARN is required"),
            "{e}"
        );
        let e = Config::from_vars(&[("MODE", "release"), ("KEY", "short")]).unwrap_err();
        assert!(
            e.to_string().contains("KEY must be at least 32 bytes"),
            "{e}"
        );
        let e = Config::from_vars(&[
            ("MODE", "release"),
            ("KEY", &"k".repeat(32)),
            ("KEY_PREVIOUS", "short"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().contains("KEY_PREVIOUS must be at least 32"),
            "{e}"
        );
        let ok = Config::from_vars(&[("MODE", "release"), ("KEY", &"k".repeat(32))]).unwrap();
        assert!(!ok.key_generated);
    }

    #[test]
    fn key_and_key_previous_are_a_ring_with_derived_ids() {
        let (new, old) = ("n".repeat(32), "o".repeat(32));
        let c =
            Config::from_vars(&[("KEY", new.as_str()), ("KEY_PREVIOUS", old.as_str())]).unwrap();
        let KeySource::Env(ring) = c.key else {
            panic!("{:?}", c.key)
        };
        assert_eq!(ring.current_id(), crate::keys::derived_id(new.as_bytes()));
        let accepted: Vec<&str> = ring.accepted_ids().collect();
        assert_eq!(accepted, [crate::keys::derived_id(old.as_bytes())]);
        let e = Config::from_vars(&[("KEY", new.as_str()), ("KEY_PREVIOUS", new.as_str())])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("KEY_PREVIOUS is the same key as KEY"),
            "{e}"
        );
        let e = Config::from_vars(&[("KEY_PREVIOUS", old.as_str())]).unwrap_err();
        assert!(
            e.to_string().contains("KEY_PREVIOUS is set without KEY"),
            "{e}"
        );
    }

    #[test]
    fn a_secret_replaces_the_key_variables() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:planx-key-AbCdEf";
        let c = Config::from_vars(&[("MODE", "release"), ("KEY_SECRET_ARN", arn)]).unwrap();
        assert!(
            matches!(&c.key, KeySource::Secret { id, refresh: 300 } if id == arn),
            "{:?}",
            c.key
        );
        assert_eq!(c.redacted()["key_source"], "secrets-manager");
        let c = Config::from_vars(&[
            ("KEY_SECRET_ARN", "planx-key"),
            ("KEY_SECRET_REFRESH", "60"),
        ])
        .unwrap();
        assert!(matches!(c.key, KeySource::Secret { refresh: 60, .. }));
        let e =
            Config::from_vars(&[("KEY_SECRET_ARN", arn), ("KEY", &"k".repeat(32))]).unwrap_err();
        assert!(e.to_string().contains("KEY_SECRET_ARN and KEY"), "{e}");
        let e =
            Config::from_vars(&[("KEY_SECRET_ARN", arn), ("KEY_SECRET_REFRESH", "1")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("KEY_SECRET_REFRESH must be a number from 10"),
            "{e}"
        );
    }

    #[test]
    fn a_function_without_a_key_needs_none_in_release_mode() {
        let c = Config::read(&[("MODE", "release")], false).unwrap();
        assert!(c.key_generated);
        assert!(matches!(c.key, KeySource::Env(_)));
    }

    #[test]
    fn reports_every_bad_variable() {
        let e = Config::from_vars(&[
            ("ARGON2_T_COST", "zero"),
            ("COOKIE_SAMESITE", "sometimes"),
            ("MODE", "prod"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("ARGON2_T_COST"), "{e}");
        assert!(e.contains("COOKIE_SAMESITE"), "{e}");
        assert!(e.contains("MODE"), "{e}");
    }

    #[test]
    fn failures_outlive_the_longest_back_off() {
        let e = Config::from_vars(&[
            ("LOGIN_BACKOFF_MAX", "900"),
            ("LOGIN_FAILURE_WINDOW", "600"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("LOGIN_FAILURE_WINDOW (600)"), "{e}");
        assert!(Config::from_vars(&[("LOGIN_FAILURE_WINDOW", "900")]).is_ok());
    }

    #[test]
    fn the_upload_limit_is_in_kilobytes_and_the_old_name_is_refused() {
        assert_eq!(
            Config::from_vars(&[("HOSTNAME", "")])
                .unwrap()
                .upload
                .limit_kb,
            5120
        );
        let c = Config::from_vars(&[("UPLOAD_LIMIT_KB", "10240")]).unwrap();
        assert_eq!(c.upload.limit_kb, 10240);
        let e = Config::from_vars(&[("UPLOAD_LIMIT", "10485760")]).unwrap_err();
        assert!(e.to_string().contains("UPLOAD_LIMIT_KB"), "{e}");
    }

    #[test]
    fn lark_is_off_until_its_four_settings_are_there() {
        let c = Config::from_vars(&[("HOSTNAME", "")]).unwrap();
        assert_eq!(
            c.lark.missing(),
            [
                "LARK_APP_ID",
                "LARK_APP_SECRET",
                "LARK_REDIRECT",
                "CONSOLE_URL"
            ]
        );
        assert_eq!(c.lark.api_url, "https://open.larksuite.com");
        assert_eq!(c.lark.start_url(), "");
        let c = Config::from_vars(&[
            ("LARK_APP_ID", "cli_a1"),
            ("LARK_APP_SECRET", "lark-app-secret-value"),
            ("LARK_REDIRECT", "https://api.example.com/lark"),
            ("CONSOLE_URL", "https://console.example.com/#/"),
        ])
        .unwrap();
        assert!(c.lark.missing().is_empty());
        assert_eq!(c.lark.start_url(), "https://api.example.com/lark/authorize");
        let shown = c.redacted().to_string();
        assert!(!shown.contains("lark-app-secret-value"), "{shown}");
        let c = Config::from_vars(&[("LARK_APP_SECRET_ARN", "planx/lark")]).unwrap();
        assert!(
            c.lark
                .missing()
                .contains(&"LARK_APP_SECRET_ARN (unreadable at start)")
        );
    }

    #[test]
    fn lark_settings_are_checked_at_start() {
        let e = Config::from_vars(&[
            ("LARK_REDIRECT", "https://api.example.com/callback"),
            ("CONSOLE_URL", "https://console.example.com"),
            ("LARK_API_URL", "https://open.feishu.cn"),
            ("LARK_APP_SECRET", "s"),
            ("LARK_APP_SECRET_ARN", "planx/lark"),
            ("LARK_TIMEOUT_MS", "60000"),
        ])
        .unwrap_err()
        .to_string();
        for needle in [
            "LARK_REDIRECT must be this API's callback",
            "CONSOLE_URL must end in /",
            "LARK_API_URL is Feishu's and LARK_AUTH_URL Lark's",
            "LARK_APP_SECRET and LARK_APP_SECRET_ARN are both set",
            "LARK_TIMEOUT_MS must be a number from 100 to 10000",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        assert!(!e.contains("\"s\""), "the secret is not shown: {e}");
    }

    #[test]
    fn redacted_values_hide_the_key() {
        let key = "a-very-secret-key-of-at-least-32-bytes!!";
        let c = Config::from_vars(&[("KEY", key)]).unwrap();
        let shown = c.redacted().to_string();
        assert!(!shown.contains(key));
        assert!(shown.contains("[redacted]"));
    }
}
