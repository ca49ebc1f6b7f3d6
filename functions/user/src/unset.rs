//! `DELETE /user/{key}`: unbinding the phone, the TOTP app or the Lark account.
//! The router also sends DELETE on each static path below `/user` here (axum
//! matches those before `/user/{key}`), but `/user/sessions`, whose DELETE is
//! its own, and [`document_static_paths`] documents them the same way.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use shared::http::Recent;
use shared::store::UserChange;
use shared::{ApiError, ApiResult, AppState};
use utoipa::openapi::OpenApi;

use crate::change;

/// What `DELETE /user/{key}` can unbind.
#[derive(Clone, Copy)]
enum Binding {
    Phone,
    Totp,
    Lark,
}

impl Binding {
    /// `phone`, `totp` or `lark`, in any case.
    fn parse(key: &str) -> Option<Self> {
        match key.to_ascii_lowercase().as_str() {
            "phone" => Some(Binding::Phone),
            "totp" => Some(Binding::Totp),
            "lark" => Some(Binding::Lark),
            _ => None,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Binding::Phone => "the phone",
            Binding::Totp => "the TOTP app",
            Binding::Lark => "the Lark account",
        }
    }

    fn unset(self) -> UserChange {
        match self {
            Binding::Phone => UserChange::Phone(None),
            Binding::Totp => UserChange::Totp(None),
            Binding::Lark => UserChange::Lark(None),
        }
    }
}

#[utoipa::path(
    delete,
    path = "/user/{key}",
    summary = "Unset User",
    description = "Unbinds the phone, the TOTP app or the Lark account.",
    params(("key" = String, Path, description = "`phone`, `totp` or `lark` (any case).", example = "phone")),
    security(("token" = ["recent"])),
    responses(
        (status = 204, description = "Unbound (or was not bound)."),
        (status = 400, description = "Code: `INVALID_FIELD` (`key` is not `phone`, `totp` or `lark`)."),
    )
)]
pub(crate) async fn unset(
    State(state): State<AppState>,
    Recent(auth): Recent,
    key: Option<Path<String>>,
    uri: Uri,
) -> ApiResult<StatusCode> {
    // On a static path (`/user/phone`) the key is the path's last segment.
    let key = match key {
        Some(Path(key)) => key,
        None => uri.path().rsplit('/').next().unwrap_or_default().into(),
    };
    let binding = Binding::parse(&key)
        .ok_or_else(|| ApiError::field("key", "must be phone, totp or lark"))?;
    change(&state, &auth, binding.unset()).await
}

/// Documents `DELETE` on every static path below `/user` as the router serves
/// it: the `/user/{key}` operation with that key, answering 204 if it names a
/// binding and 400 if not.
pub(crate) fn document_static_paths(doc: &mut OpenApi) {
    let Some(keyed) = doc
        .paths
        .paths
        .get("/user/{key}")
        .and_then(|item| item.delete.clone())
    else {
        return;
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        // Static paths one segment below `/user` whose DELETE is not their own.
        let Some(key) = path
            .strip_prefix("/user/")
            .filter(|k| !k.starts_with('{') && !k.contains('/') && item.delete.is_none())
        else {
            continue;
        };
        let binding = Binding::parse(key);
        let mut operation = keyed.clone();
        operation.parameters = None;
        operation.operation_id = Some(format!("unset_{key}"));
        operation.summary = Some(format!("Unset User ({key})"));
        operation.description = Some(match binding {
            Some(b) => format!(
                "`DELETE /user/{{key}}` with `key` = `{key}`: unbinds {}.",
                b.what()
            ),
            None => format!(
                "`DELETE /user/{{key}}` with `key` = `{key}`: always refused, `{key}` is not a binding."
            ),
        });
        let never = if binding.is_some() { "400" } else { "204" };
        operation.responses.responses.remove(never);
        item.delete = Some(operation);
    }
}
