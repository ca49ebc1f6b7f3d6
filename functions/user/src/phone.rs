//! `GET /user/phone_code` and `POST /user/phone`: binding a phone with a code sent to it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use shared::codes::{self, Channel, Issue};
use shared::device::Device;
use shared::http::{Client, Json, PhoneQuery, Query, Recent};
use shared::model::Purpose;
use shared::secret::Secret;
use shared::store::{CodeRef, Lookup, UserChange};
use shared::throttle::{self, Guess, GuessKind};
use shared::{ApiError, ApiResult, AppState, validate};
use utoipa::ToSchema;

use crate::settle_change;

/// Sends a code to the phone to be bound; the code is valid only for that number.
/// The code limits are taken first, so asking whether numbers are taken
/// (`PHONE_TAKEN`) costs what asking for codes does.
#[utoipa::path(
    get,
    path = "/user/phone_code",
    summary = "User SMS Code",
    description = "Sends a code by SMS to the phone to be bound.",
    params(PhoneQuery),
    security(("token" = ["recent"])),
    responses(
        (status = 204, description = "Sent."),
        (status = 400, description = "Codes: `INVALID_FIELD`, `PHONE_TAKEN`, `RATE_LIMITED` (IP cap, recipient cooldown or hourly cap)."),
    )
)]
pub(crate) async fn phone_code(
    State(state): State<AppState>,
    Recent(auth): Recent,
    client: Client,
    Query(q): Query<PhoneQuery>,
) -> ApiResult<StatusCode> {
    let phone = q.phone()?;
    let channel = Channel::Sms(phone.clone());
    let permit = codes::permit(&state, &client.ip, &channel).await?;
    if let Some(owner) = state.store.user_by_phone(&phone).await?
        && owner.id != auth.user_id
    {
        // The limiter hits stay: a taken number costs a request like a code does.
        drop(permit);
        return Err(ApiError::PhoneTaken);
    }
    let issue = Issue {
        purpose: Purpose::PhoneBind,
        subject: &auth.user_id,
        bound: Some(&phone),
        ttl: state.config.lifetimes.sms_code,
        channel,
    };
    codes::issue(&state, permit, issue).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct BindPhone {
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
    /// The six-digit code sent by SMS.
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    code: Secret<String>,
}

#[utoipa::path(
    post,
    path = "/user/phone",
    summary = "Bind User's Phone",
    description = "Binds the phone the code was sent to.",
    request_body = BindPhone,
    security(("token" = ["recent"])),
    responses(
        (status = 204, description = "Bound."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CODE`, `PHONE_TAKEN`, `RATE_LIMITED` (a guessing limit; `Retry-After` says when to try again)."),
    )
)]
pub(crate) async fn bind_phone(
    State(state): State<AppState>,
    Recent(auth): Recent,
    client: Client,
    device: Device,
    Json(body): Json<BindPhone>,
) -> ApiResult<StatusCode> {
    let phone = validate::phone("phone", &body.phone)?;
    let code = validate::code("code", body.code.expose())?;
    let guess = Guess {
        account: Lookup::Id(&auth.user_id),
        ip: &client.ip,
        device: device.0.as_ref(),
        code: Some(CodeRef {
            purpose: Purpose::PhoneBind,
            subject: auth.user_id.clone(),
        }),
        kind: GuessKind::Code,
    };
    let began = throttle::begin(&state, guess).await?;
    let user = began.user.as_ref().ok_or(ApiError::SessionEnded)?;
    match &began.code {
        Some(stored) if codes::matches(&state, stored, Some(&phone), &code) => {
            let settle = began.settle.spending(stored);
            settle_change(&state, user, UserChange::Phone(Some(phone)), &settle).await
        }
        _ => Err(ApiError::InvalidCode),
    }
}
