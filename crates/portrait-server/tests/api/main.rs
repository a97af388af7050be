//! API integration tests: the real server on an ephemeral port, a fresh store per test
//! (embedded SQLite by default, `PORTRAIT_TEST_STORE=postgres` once that backend exists), driven
//! over HTTP with `portrait-client` and raw `reqwest`.

mod accounts;
mod client;
mod client_crate;
mod client_ip;
mod cluster;
mod console;
mod custom_names;
mod fields;
mod helpers;
mod hostile;
mod kicks;
mod methods;
mod metrics;
mod numbers;
mod openapi;
mod operator_accounts;
mod operator_apps;
mod operator_shards;
mod portrait_import;
mod profile;
mod profile_errors;
mod push;
mod push_catch_up;
mod push_fallback;
mod push_sessions;
mod rate_limit;
mod retention;
mod seeds;
mod sloppy;
mod usersig;
mod webhook;
