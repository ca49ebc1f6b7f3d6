//! The signed-in account: profile, password, re-authentication, phone and
//! TOTP binding, unbinding, signed-in devices.
//! One module per operation group; this file routes them and lists them for
//! the OpenAPI document.

mod password;
mod phone;
mod profile;
mod reauth;
mod sessions;
mod totp;
mod unset;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use shared::device::Device;
use shared::http::{Auth, Client};
use shared::model::User;
use shared::notices;
use shared::store::{Lookup, Settle, StoreError, UserChange};
use shared::throttle::{self, Guess, GuessKind};
use shared::{ApiError, ApiResult, AppState};
use utoipa::OpenApi;

/// This function's operations in the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(paths(
        profile::profile,
        profile::set_profile,
        password::set_password,
        reauth::reauthenticate,
        phone::phone_code,
        phone::bind_phone,
        totp::totp_url,
        totp::bind_totp,
        unset::unset,
        sessions::list,
        sessions::end_others,
        sessions::end_one
    ))]
    struct Doc;
    let mut doc = Doc::openapi();
    unset::document_static_paths(&mut doc);
    doc
}

pub fn router() -> Router<AppState> {
    let static_paths = [
        ("/user/password", post(password::set_password)),
        ("/user/reauthenticate", post(reauth::reauthenticate)),
        ("/user/phone_code", get(phone::phone_code)),
        ("/user/phone", post(phone::bind_phone)),
        ("/user/totp", get(totp::totp_url).post(totp::bind_totp)),
    ];
    let router = Router::new()
        .route("/user", get(profile::profile).patch(profile::set_profile))
        .route("/user/{key}", delete(unset::unset))
        .route(
            "/user/sessions",
            get(sessions::list).delete(sessions::end_others),
        )
        .route("/user/sessions/{id}", delete(sessions::end_one));
    // axum matches a static path before `/user/{key}`: each one takes DELETE
    // to the same handler, or `DELETE /user/phone` would answer 405.
    // (`/user/sessions` has a DELETE of its own.)
    static_paths
        .into_iter()
        .fold(router, |router, (path, methods)| {
            router.route(path, methods.delete(unset::unset))
        })
}

/// Takes the slots of a guess at the signed-in account's own secret (its
/// password, or a TOTP code), counted under its email like a sign-in's,
/// before the secret is checked: the account as read, if the session is
/// still valid for it, and what a success gives back.
async fn own_secret_guess(
    state: &AppState,
    auth: &Auth,
    client: &Client,
    device: &Device,
) -> ApiResult<(User, Settle)> {
    let guess = Guess {
        account: Lookup::Id(&auth.user_id),
        ip: &client.ip,
        device: device.0.as_ref(),
        code: None,
        kind: GuessKind::Password,
    };
    let began = throttle::begin(state, guess).await?;
    let user = began
        .user
        .filter(|u| auth.session.is_valid_for(u))
        .ok_or(ApiError::SessionEnded)?;
    Ok((user, began.settle))
}

/// Applies one change to `user` with what a successful guess gives back: 204,
/// `INVALID_CODE` when the guess's code was spent meanwhile, or the field it
/// conflicts on; with its notice ([`notices::settle_change`]).
async fn settle_change(
    state: &AppState,
    user: &User,
    change: UserChange,
    settle: &Settle,
) -> ApiResult<StatusCode> {
    match notices::settle_change(state, user, change, settle).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::InvalidCode),
        // The signed-in account is gone, or its credentials changed under
        // this request: so is its session.
        Err(StoreError::NoSuchUser | StoreError::Changed) => Err(ApiError::SessionEnded),
        Err(e) => Err(e.into()),
    }
}

/// Applies one change to the signed-in account, as the session read it: 204,
/// or the field it conflicts on.
async fn change(state: &AppState, auth: &Auth, change: UserChange) -> ApiResult<StatusCode> {
    settle_change(state, &auth.user, change, &Settle::default()).await
}
