//! `GET /user/totp` and `POST /user/totp`: a pending TOTP secret, then binding
//! it with two codes from the app.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::codes::{self, CodeError};
use shared::http::{Json, NoStore, Recent};
use shared::model::{Purpose, Totp};
use shared::secret::Secret;
use shared::store::UserChange;
use shared::{ApiError, ApiResult, AppState, totp, validate};
use utoipa::ToSchema;

use crate::change;

/// `{"totp": URI}`: a pending TOTP secret to scan.
#[derive(Serialize, ToSchema)]
pub(crate) struct TotpUri {
    /// An `otpauth://totp/...` URI.
    #[schema(
        example = "otpauth://totp/planx:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=planx"
    )]
    totp: String,
}

/// A new TOTP secret as an otpauth URI, pending until bound with two codes.
/// Only the secret's digest is kept meanwhile. The answer carries the secret,
/// so no cache may keep it.
#[utoipa::path(
    get,
    path = "/user/totp",
    summary = "Generate TOTP URL",
    description = "A new TOTP secret as an otpauth URI, pending until bound.",
    security(("token" = ["recent"])),
    responses(
        (status = 200, description = "The URI (`Cache-Control: no-store`).", body = TotpUri),
    )
)]
pub(crate) async fn totp_url(
    State(state): State<AppState>,
    Recent(auth): Recent,
) -> ApiResult<NoStore<TotpUri>> {
    let secret = totp::new_secret();
    let uri = totp::url(&secret, &state.config.namespace, &auth.user.email)
        .ok_or_else(|| ApiError::Internal("could not build an otpauth URI".into()))?;
    let ttl = state.config.lifetimes.totp_bind;
    let subject = &auth.user_id;
    codes::store(&state, Purpose::TotpBind, subject, None, ttl, Some(secret)).await?;
    Ok(NoStore(TotpUri { totp: uri }))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct BindTotp {
    /// The otpauth URI from `GET /user/totp`.
    #[schema(value_type = String, format = Password)]
    totp: Secret<String>,
    /// Two codes of consecutive steps: the previous one, then the current one.
    #[schema(value_type = Vec<String>, min_items = 2, max_items = 2)]
    tss: Vec<Secret<String>>,
}

/// Binds the pending secret once the app shows two codes of consecutive steps,
/// the later one no older than the previous step.
#[utoipa::path(
    post,
    path = "/user/totp",
    summary = "Bind TOTP",
    description = "Binds the pending TOTP secret with two consecutive codes.",
    request_body = BindTotp,
    security(("token" = ["recent"])),
    responses(
        (status = 204, description = "Bound."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_TOTP`."),
    )
)]
pub(crate) async fn bind_totp(
    State(state): State<AppState>,
    Recent(auth): Recent,
    Json(body): Json<BindTotp>,
) -> ApiResult<StatusCode> {
    let secret = totp::secret_from_url(body.totp.expose())
        .ok_or_else(|| ApiError::field("totp", "is not an otpauth://totp URI"))?;
    let [first, second] = body.tss.as_slice() else {
        return Err(ApiError::field("tss", "must hold exactly two codes"));
    };
    let first = validate::code("tss[0]", first.expose())?;
    let second = validate::code("tss[1]", second.expose())?;
    let now = totp::step_of(state.now());
    let step = (now.saturating_sub(1)..=now + 1).find(|&s| {
        s > 0
            && totp::code_at_step(&secret, s - 1).as_deref() == Some(first.as_str())
            && totp::code_at_step(&secret, s).as_deref() == Some(second.as_str())
    });
    let step = step.ok_or(ApiError::InvalidTotp)?;
    codes::redeem(&state, Purpose::TotpBind, &auth.user_id, None, &secret)
        .await
        .map_err(|e| match e {
            // The secret is the code here: not pending means the URI is stale.
            CodeError::Rejected => ApiError::field(
                "totp",
                "is not the pending secret or has expired; request a new one",
            ),
            other => other.into(),
        })?;
    let bound = Totp {
        secret: Secret::new(secret),
        last_step: step,
    };
    change(&state, &auth, UserChange::Totp(Some(bound))).await
}
