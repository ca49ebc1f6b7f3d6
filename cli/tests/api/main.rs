//! The contract suite: every operation of the seed through the merged router,
//! success and failure paths, on the store and notifier traits.

mod support;

mod errors;
mod login;
mod ping_options;
mod races;
mod recovery;
mod session_flow;
mod sms;
mod totp;
mod user;
