//! The library every planx function shares: configuration, errors, auth
//! primitives, the store and notifier traits with their backends, and HTTP glue.

pub mod accounts;
pub mod aws;
pub mod clock;
pub mod codes;
pub mod config;
pub mod crypto;
pub mod device;
pub mod error;
pub mod http;
pub mod keys;
pub mod lambda;
pub mod lark;
pub mod logs;
pub mod model;
pub mod notices;
pub mod notify;
pub mod password;
#[cfg(test)]
mod proptests;
pub mod secret;
pub mod sessions;
pub mod state;
pub mod store;
pub mod throttle;
pub mod token;
pub mod totp;
pub mod validate;

pub use config::Config;
pub use error::{ApiError, ApiResult};
pub use state::AppState;
