//! Portrait's domain, shared by the server, the store and the Rust SDK.
//!
//! What lives here:
//! * [`code`]: the vendor error-code table ([`ErrorCode`]) and its default `ErrorInfo` strings;
//! * [`wire`]: the Tencent Cloud IM REST JSON bodies and the response envelope;
//! * [`query`]: the URL query of REST calls and of the WebSocket: pairs, form decoding;
//! * [`ident`]: the validated `UserID` newtype;
//! * [`schema`]: the profile schema — the 12 standard `Tag_Profile_IM_*` fields, custom
//!   `Tag_Profile_Custom_*` fields, permissions, byte limits and the sensitive-word filter;
//! * [`usersig`]: TLSSigAPIv2 UserSig minting and verification;
//! * [`ws`]: the WebSocket protocol of `/v1/ws` (frames, ops, close and error codes), from which
//!   the TypeScript SDK's `wire.ts` is generated;
//! * [`operator`]: the operator API (`/admin/v1`): apps, custom fields, accounts, its errors;
//! * [`profile`]: the enumerated values of standard fields (`Gender`, `AllowType`, …) as types.
//!
//! What must not live here: I/O of any kind (no sockets, files, clocks or async runtime). Time is
//! passed in by the caller so that expiry is testable.
#![warn(missing_docs)]

pub mod code;
pub mod ident;
pub mod operator;
pub mod profile;
pub mod query;
pub mod schema;
pub mod usersig;
pub mod wire;
pub mod ws;

pub use code::ErrorCode;
pub use ident::Identifier;
pub use schema::{FieldError, ProfileValue, Tag};
pub use usersig::SigError;
