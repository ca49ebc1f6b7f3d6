//! `GET /user/phone_code` and `POST /user/phone`: binding a phone with a code sent to it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use shared::codes::{self, Channel, Issue};
use shared::http::{Auth, Client, Json, Query};
use shared::model::Purpose;
use shared::secret::Secret;
use shared::store::UserChange;
use shared::{ApiError, ApiResult, AppState, validate};
use utoipa::{IntoParams, ToSchema};

use crate::change;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PhoneQuery {
    /// The phone number to bind, in E.164 form, e.g. `+14155550123` (`%2B`; a
    /// raw `+`, which decodes to a space, is read as `+` too).
    #[param(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
}

/// Sends a code to the phone to be bound; the code is valid only for that number.
#[utoipa::path(
    get,
    path = "/user/phone_code",
    summary = "User SMS Code",
    description = "Sends a code by SMS to the phone to be bound.",
    params(PhoneQuery),
    security(("token" = [])),
    responses(
        (status = 204, description = "Sent."),
        (status = 400, description = "Codes: `INVALID_FIELD`, `PHONE_TAKEN`, `RATE_LIMITED` (IP cap, recipient cooldown or hourly cap)."),
    )
)]
pub(crate) async fn phone_code(
    State(state): State<AppState>,
    auth: Auth,
    client: Client,
    Query(q): Query<PhoneQuery>,
) -> ApiResult<StatusCode> {
    let phone = validate::phone_query("phone", &q.phone)?;
    if let Some(owner) = state.store.user_by_phone(&phone).await?
        && owner.id != auth.user_id
    {
        return Err(ApiError::PhoneTaken);
    }
    let channel = Channel::Sms(phone.clone());
    let permit = codes::permit(&state, &client.ip, &channel).await?;
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
    security(("token" = [])),
    responses(
        (status = 204, description = "Bound."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CODE`, `PHONE_TAKEN`."),
    )
)]
pub(crate) async fn bind_phone(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<BindPhone>,
) -> ApiResult<StatusCode> {
    let phone = validate::phone("phone", &body.phone)?;
    let code = validate::code("code", body.code.expose())?;
    let subject = &auth.user_id;
    codes::redeem(&state, Purpose::PhoneBind, subject, Some(&phone), &code).await?;
    change(&state, &auth, UserChange::Phone(Some(phone))).await
}
