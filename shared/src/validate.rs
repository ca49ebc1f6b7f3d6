//! Parsers for the values clients send. Each returns the normalised value or a
//! [`FieldError`] that names the field; the HTTP layer turns it into `INVALID_FIELD`.

/// A value that is missing or not acceptable, and which field it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub const MAX_EMAIL: usize = 254;
pub const MAX_NAME: usize = 64;
pub const MAX_AVATAR: usize = 2048;

/// A plausible address: one `@`, a dotted domain of letters, digits and hyphens,
/// no spaces or control characters. Returned trimmed, case kept (compared lowercased).
pub fn email(field: &str, raw: &str) -> Result<String, FieldError> {
    let bad = |why: &str| FieldError::new(field, why);
    let value = raw.trim();
    if value.is_empty() {
        return Err(bad("is required"));
    }
    if value.len() > MAX_EMAIL {
        return Err(bad("is too long"));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(bad("is not a valid email address"));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"@:;,<>()[]\\\"".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(value.to_string())
    } else {
        Err(bad("is not a valid email address"))
    }
}

/// An E.164 number: `+`, a non-zero digit, 7 to 15 digits in all. Spaces,
/// hyphens, dots and parentheses are dropped first, as people type them.
pub fn phone(field: &str, raw: &str) -> Result<String, FieldError> {
    let value: String = raw
        .trim()
        .chars()
        .filter(|c| !" -.()".contains(*c))
        .collect();
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    let digits = value.strip_prefix('+').unwrap_or("");
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            "must be an E.164 phone number such as +14155550123",
        ))
    }
}

/// A phone number from a query string. Angular (the weplanx console) leaves a
/// `+` raw in query values, and form decoding reads it as a space, so
/// `?phone=+8613800000000` arrives as `" 8613800000000"`. A leading space
/// before a digit can only have been that `+`; `%2B` works as ever.
pub fn phone_query(field: &str, raw: &str) -> Result<String, FieldError> {
    match raw.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            phone(field, &format!("+{rest}"))
        }
        _ => phone(field, raw),
    }
}

/// An email address from a query string, where a raw `+` (`ada+tag@...`)
/// arrived as a space (see [`phone_query`]): an address holds no space, so
/// each one inside it was a `+`.
pub fn email_query(field: &str, raw: &str) -> Result<String, FieldError> {
    email(field, &raw.trim().replace(' ', "+"))
}

/// A six-digit one-time code.
pub fn code(field: &str, raw: &str) -> Result<String, FieldError> {
    let value = raw.trim();
    if value.len() == 6 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        Err(FieldError::new(field, "must be 6 digits"))
    }
}

/// Free text with a length limit in characters and no control characters.
pub fn text(field: &str, raw: &str, max: usize, required: bool) -> Result<String, FieldError> {
    let value = raw.trim();
    if required && value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// An avatar: empty (none), or an absolute `https:` URL (the scheme in any
/// case), returned as the parsed URL serialises it, so what is stored and
/// shown is a URL a browser reads the same way. Anything else (`javascript:`,
/// `data:`, `http:`, a relative path) could run script or leak where a page
/// shows it. No control characters, no user name or password in it, and at
/// most [`MAX_AVATAR`] characters as given and as stored.
pub fn avatar(field: &str, raw: &str) -> Result<String, FieldError> {
    let value = text(field, raw, MAX_AVATAR, false)?;
    if value.is_empty() {
        return Ok(value);
    }
    let bad = |why: &str| Err(FieldError::new(field, why));
    let Ok(url) = url::Url::parse(&value) else {
        return bad("must be an https URL");
    };
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return bad("must be an https URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry a user name or password");
    }
    let serialised = url.to_string();
    if serialised.chars().count() > MAX_AVATAR {
        return bad(&format!("must be at most {MAX_AVATAR} characters"));
    }
    Ok(serialised)
}

/// A required field that may be absent from the body.
pub fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, FieldError> {
    value
        .as_deref()
        .ok_or_else(|| FieldError::new(field, "is required"))
}

/// Masks all but the last `keep` characters: how phone numbers are shown.
pub fn mask(value: &str, keep: usize) -> String {
    let n = value.chars().count();
    value
        .chars()
        .enumerate()
        .map(|(i, c)| if i + keep < n && c != '+' { '*' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("email", " Ada@Example.com ").unwrap(),
            "Ada@Example.com"
        );
        assert!(email("email", "a.b+tag@sub.example.co").is_ok());
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            "a@x..com",
            "a:b@example.com",
        ] {
            let e = email("email", bad);
            assert!(e.is_err(), "{bad:?} accepted");
        }
        let msg = email("email", "nope").unwrap_err().to_string();
        assert!(msg.starts_with("email:"), "{msg}");
        assert!(email("email", &format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn phones() {
        assert_eq!(phone("phone", "+1 (415) 555-0123").unwrap(), "+14155550123");
        assert_eq!(phone("phone", "+8613800138000").unwrap(), "+8613800138000");
        for bad in [
            "",
            "14155550123",
            "+0123456789",
            "+123",
            "+1234567890123456",
            "+1415abc0123",
        ] {
            assert!(phone("phone", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn query_values_whose_plus_arrived_as_a_space() {
        for (raw, read) in [
            (" 8613800138000", "+8613800138000"),
            ("+8613800138000", "+8613800138000"),
            (" 1 415 555 0123", "+14155550123"),
        ] {
            assert_eq!(phone_query("phone", raw).unwrap(), read, "{raw:?}");
        }
        // Without a `+` (raw or as a space) it is still no E.164 number.
        for bad in ["8613800138000", "  8613800138000", " ", " +86138"] {
            assert!(phone_query("phone", bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            email_query("email", "ada tag@example.com").unwrap(),
            "ada+tag@example.com"
        );
        assert_eq!(
            email_query("email", " ada@example.com ").unwrap(),
            "ada@example.com"
        );
        assert!(email_query("email", "ada@exa mple.com").is_err());
    }

    #[test]
    fn codes_and_text() {
        assert_eq!(code("code", " 012345 ").unwrap(), "012345");
        assert!(code("code", "12345").is_err());
        assert!(code("code", "12345a").is_err());
        assert_eq!(text("name", " Ada ", 64, true).unwrap(), "Ada");
        assert!(text("name", "", 64, true).is_err());
        assert!(text("name", &"é".repeat(65), 64, true).is_err());
        assert!(text("name", "a\u{0}b", 64, true).is_err());
    }

    #[test]
    fn avatars_are_empty_or_https_urls() {
        for (raw, stored) in [
            ("", ""),
            ("  ", ""),
            (
                "https://cdn.example.com/a.png",
                "https://cdn.example.com/a.png",
            ),
            (
                "HTTPS://CDN.Example.com/A.png",
                "https://cdn.example.com/A.png",
            ),
            ("hTtPs://cdn.example.com", "https://cdn.example.com/"),
            (
                "https://cdn.example.com/a b.png?s=1#x",
                "https://cdn.example.com/a%20b.png?s=1#x",
            ),
            (
                "https://cdn.example.com/\"><script>",
                "https://cdn.example.com/%22%3E%3Cscript%3E",
            ),
            (
                "https://bücher.example/ü.png",
                "https://xn--bcher-kva.example/%C3%BC.png",
            ),
        ] {
            assert_eq!(avatar("avatar", raw).as_deref(), Ok(stored), "{raw:?}");
        }
        for raw in [
            "javascript:alert(document.cookie)",
            "JavaScript:alert(1)",
            "data:image/png;base64,AAAA",
            "http://cdn.example.com/a.png",
            "//cdn.example.com/a.png",
            "/avatars/a.png",
            "a.png",
            "https:",
            "https://",
            "https://user:pass@cdn.example.com/a.png",
            "https://cdn.example.com/a\u{0}.png",
            "https://cdn.example.com/\na.png",
            "java\tscript:alert(1)",
            "ftp://cdn.example.com/a.png",
        ] {
            let e = avatar("avatar", raw).unwrap_err();
            assert_eq!(e.field, "avatar", "{raw:?}");
        }
        // As given and as re-serialised, within the limit.
        let spaces = format!("https://cdn.example.com/{}a", " ".repeat(1000));
        assert!(
            avatar("avatar", &spaces)
                .unwrap_err()
                .reason
                .contains("at most")
        );
    }

    #[test]
    fn masking_keeps_only_the_tail() {
        assert_eq!(mask("+14155550123", 4), "+*******0123");
        assert_eq!(mask("12", 4), "12");
    }
}
