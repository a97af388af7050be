//! The client API for an app's users (docs/client-api.md): profile calls under `/v1/profile/`
//! and the WebSocket `/v1/ws`. Users sign in with their own UserSig (`auth::user`).

pub mod profile;
pub mod ws;
