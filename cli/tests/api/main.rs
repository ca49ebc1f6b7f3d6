//! The contract suite: every operation of the seed through the merged router,
//! success and failure paths, on the store and notifier traits.

mod backend;
mod paused;
mod support;

mod console;
mod cookies;
mod credentials;
mod devices;
mod enumeration;
mod errors;
mod events;
mod faults;
mod keys;
mod lark;
mod login;
mod logs;
mod notices;
mod openapi;
mod ping_options;
mod races;
mod recovery;
mod refresh;
mod round_trips;
mod routes;
mod session_flow;
mod sms;
mod stepup;
mod template;
mod totp;
mod user;
