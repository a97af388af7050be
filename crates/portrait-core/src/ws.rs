//! The WebSocket protocol of `GET /v1/ws` (docs/client-api.md), written once: the frames the
//! server sends ([`ServerFrame`]), the ops a client sends ([`ClientOp`]), the close codes
//! ([`CloseCode`]) and the error codes its `error` frames carry ([`WS_ERROR_CODES`]).
//!
//! The server serializes these types, the Rust client (`portrait-client`) deserializes them, and
//! the TypeScript SDK's `sdk/js/src/wire.ts` is generated from them (a unit test of this module
//! fails when the checked-in file differs; `PORTRAIT_BLESS=1 cargo test -p portrait-core ws::`
//! rewrites it). Change a frame here and all three follow.
//!
//! What must not live here: how a session behaves (catch-up, limits, timers) — that is the
//! server's `api/v1/ws.rs` — or any I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wire::ProfileItem;
use crate::ErrorCode;

#[cfg(test)]
mod typescript;

/// A frame from the server (JSON text, tagged by `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ServerFrame {
    /// First frame after a successful handshake.
    Ready {
        /// The signed-in user.
        user: String,
        /// The app's latest version (head of its change log) at connect.
        #[cfg_attr(test, ts(type = "number"))]
        version: u64,
        /// Subscriptions allowed per connection, the own account included.
        max_subscriptions: usize,
    },
    /// One change of a subscribed account.
    Profile(ProfileEvent),
    /// A catch-up is complete (of the connection's `since`, or of a `subscribe` with `since`).
    Synced {
        /// Every change of every subscribed account up to it has been sent.
        #[cfg_attr(test, ts(type = "number"))]
        cursor: u64,
    },
    /// Answer to [`ClientOp::Subscribe`].
    Subscribed {
        /// The accounts newly subscribed.
        accounts: Vec<String>,
        /// Subscriptions now held.
        count: usize,
    },
    /// Answer to [`ClientOp::Unsubscribe`].
    Unsubscribed {
        /// The accounts no longer subscribed.
        accounts: Vec<String>,
        /// Subscriptions now held.
        count: usize,
    },
    /// Answer to [`ClientOp::Ping`].
    Pong,
    /// A refused op, a notice (49002 at connect, 49005 before a catch-up), or the reason of the
    /// close that follows.
    Error {
        /// An [`ErrorCode`] (kept a bare number so that `match` arms can name it).
        code: u32,
        /// Why, in English.
        message: String,
        /// The op it answers ([`OpName::as_str`]); absent when it answers none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional, as = "Option<OpName>"))]
        op: Option<String>,
    },
}

impl ServerFrame {
    /// An `error` frame; `op` names the op it answers.
    pub fn error(code: ErrorCode, message: impl Into<String>, op: Option<OpName>) -> Self {
        ServerFrame::Error {
            code: code.0,
            message: message.into(),
            op: op.map(|o| o.as_str().to_owned()),
        }
    }

    /// The code of an `error` frame.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ServerFrame::Error { code, .. } => Some(ErrorCode(*code)),
            _ => None,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a frame serializes")
    }
}

/// A `profile` frame: one change of a subscribed account's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ProfileEvent {
    /// Whose profile changed.
    pub account: String,
    /// The change's version (per app, strictly increasing).
    #[cfg_attr(test, ts(type = "number"))]
    pub version: u64,
    /// What the change was.
    pub kind: ChangeKind,
    /// Who made it: the account's own UserID when its user changed it, otherwise
    /// [`crate::wire::ADMIN_OPERATOR`] (an app admin, the app's backend or Portrait itself).
    pub operator: String,
    /// When (Unix milliseconds).
    #[cfg_attr(test, ts(type = "number"))]
    pub time_ms: i64,
    /// The items this change wrote, user-readable tags only (none for a delete).
    pub items: Vec<ProfileItem>,
    /// Every change of every subscribed account up to it has been sent on this connection:
    /// reconnect with `since=<cursor>` to receive exactly what was missed.
    #[cfg_attr(test, ts(type = "number"))]
    pub cursor: u64,
}

impl ProfileEvent {
    /// The value this change wrote to `tag`.
    pub fn item(&self, tag: &str) -> Option<&serde_json::Value> {
        self.items.iter().find(|i| i.tag == tag).map(|i| &i.value)
    }
}

/// The `kind` of a [`ProfileEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ChangeKind {
    /// The account was imported (new, or again with Nick/FaceUrl).
    Import,
    /// Profile fields were set.
    Set,
    /// The account was deleted (no items).
    Delete,
}

impl ChangeKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Import => "import",
            ChangeKind::Set => "set",
            ChangeKind::Delete => "delete",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ChangeKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for ChangeKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// An op from the client (JSON text, tagged by `op`). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ClientOp {
    /// Adds subscriptions, all or none (error 49002 over `max_subscriptions`). With `since`,
    /// the new accounts' changes after it are sent first, then `synced`.
    Subscribe {
        /// UserIDs to add.
        accounts: Vec<String>,
        /// The cursor to catch the new accounts up from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional, type = "number"))]
        since: Option<u64>,
    },
    /// Removes subscriptions (the own account stays).
    Unsubscribe {
        /// UserIDs to remove.
        accounts: Vec<String>,
    },
    /// Asks for a `pong` (for clients that cannot send WebSocket pings: browsers).
    Ping,
}

impl ClientOp {
    /// Which op this is.
    pub fn name(&self) -> OpName {
        match self {
            ClientOp::Subscribe { .. } => OpName::Subscribe,
            ClientOp::Unsubscribe { .. } => OpName::Unsubscribe,
            ClientOp::Ping => OpName::Ping,
        }
    }

    /// The op as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an op serializes")
    }
}

/// The name of a [`ClientOp`], as an `error` frame's `op` echoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum OpName {
    /// `subscribe`.
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
    /// `ping`.
    Ping,
}

impl OpName {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpName::Subscribe => "subscribe",
            OpName::Unsubscribe => "unsubscribe",
            OpName::Ping => "ping",
        }
    }
}

/// A WebSocket close code the server uses (RFC 6455 ones and Portrait's 4000–4004).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// Nothing received from the client within the idle timeout; reconnect.
    pub const IDLE: CloseCode = CloseCode(4000);
    /// Sign-in failed (an `error` frame with the code came first); a new UserSig is needed.
    pub const AUTH: CloseCode = CloseCode(4001);
    /// The user was kicked (error 70001) or the account deleted (error 70107).
    pub const REVOKED: CloseCode = CloseCode(4002);
    /// Too many connections for this user (error 49003).
    pub const TOO_MANY_CONNECTIONS: CloseCode = CloseCode(4003);
    /// The connection's UserSig expired (error 70001); reconnect with a new one.
    pub const EXPIRED: CloseCode = CloseCode(4004);
    /// The server is shutting down (RFC 6455 "going away"); reconnect, to another node.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// The client kept sending faster than its op rate (RFC 6455 "policy violation").
    pub const POLICY: CloseCode = CloseCode(1008);
    /// A message or frame over the size limit (RFC 6455 "message too big").
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// The server failed (e.g. its database is unreachable); retry with backoff.
    pub const INTERNAL: CloseCode = CloseCode(1011);

    /// Every close code the server sends, by name (the TypeScript `CloseCode` table).
    pub const ALL: [(&'static str, CloseCode); 9] = [
        ("IDLE", CloseCode::IDLE),
        ("AUTH", CloseCode::AUTH),
        ("REVOKED", CloseCode::REVOKED),
        ("TOO_MANY_CONNECTIONS", CloseCode::TOO_MANY_CONNECTIONS),
        ("EXPIRED", CloseCode::EXPIRED),
        ("GOING_AWAY", CloseCode::GOING_AWAY),
        ("POLICY", CloseCode::POLICY),
        ("TOO_BIG", CloseCode::TOO_BIG),
        ("INTERNAL", CloseCode::INTERNAL),
    ];

    /// Whether the same client may simply reconnect (with its cursor as `since`), as opposed to
    /// needing a new UserSig (4001, 4004), an operator's decision (4002) or a fix (1008, 1009).
    pub fn is_transient(self) -> bool {
        matches!(self.0, 1000..=1007 | 1011..=1015 | 4000 | 4003)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The codes an `error` frame carries that are particular to the WebSocket, by name (the
/// TypeScript `WsErrorCode` table). Sign-in failures carry the REST sign-in codes (60xxx,
/// 70xxx) and a server failure 40006.
pub const WS_ERROR_CODES: [(&str, ErrorCode); 8] = [
    ("TOO_MANY_SUBSCRIPTIONS", ErrorCode::TOO_MANY_SUBSCRIPTIONS),
    ("TOO_MANY_CONNECTIONS", ErrorCode::TOO_MANY_CONNECTIONS),
    ("BAD_FRAME", ErrorCode::BAD_FRAME),
    ("CHANGES_PRUNED", ErrorCode::CHANGES_PRUNED),
    ("RATE_LIMITED", ErrorCode::RATE_LIMITED),
    ("SIG_EXPIRED", ErrorCode::SIG_EXPIRED),
    ("ACCOUNT_NOT_FOUND", ErrorCode::ACCOUNT_NOT_FOUND),
    ("INTERNAL", ErrorCode::PROFILE_INTERNAL),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_serialize_with_the_documented_field_order() {
        let ev = ServerFrame::Profile(ProfileEvent {
            account: "bob".into(),
            version: 7,
            kind: ChangeKind::Set,
            operator: "admin".into(),
            time_ms: 1,
            items: vec![ProfileItem {
                tag: "Tag_Profile_IM_Nick".into(),
                value: json!("B"),
            }],
            cursor: 7,
        });
        assert_eq!(
            ev.to_json(),
            r#"{"type":"profile","account":"bob","version":7,"kind":"set","operator":"admin","time_ms":1,"items":[{"Tag":"Tag_Profile_IM_Nick","Value":"B"}],"cursor":7}"#
        );
        assert_eq!(
            ServerFrame::error(ErrorCode::BAD_FRAME, "no", Some(OpName::Subscribe)).to_json(),
            r#"{"type":"error","code":49004,"message":"no","op":"subscribe"}"#
        );
        assert_eq!(
            ServerFrame::error(ErrorCode::CHANGES_PRUNED, "gone", None).to_json(),
            r#"{"type":"error","code":49005,"message":"gone"}"#
        );
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn ops_round_trip_and_unknown_fields_are_ignored() {
        let op: ClientOp =
            serde_json::from_str(r#"{"op":"subscribe","accounts":["a"],"x":1}"#).unwrap();
        assert_eq!(
            op,
            ClientOp::Subscribe {
                accounts: vec!["a".into()],
                since: None
            }
        );
        assert_eq!(op.to_json(), r#"{"op":"subscribe","accounts":["a"]}"#);
        assert_eq!(ClientOp::Ping.to_json(), r#"{"op":"ping"}"#);
        assert!(serde_json::from_str::<ClientOp>(r#"{"op":"nope"}"#).is_err());
    }

    #[test]
    fn only_reconnectable_closes_are_transient() {
        for (name, code) in CloseCode::ALL {
            let transient = matches!(
                name,
                "IDLE" | "TOO_MANY_CONNECTIONS" | "GOING_AWAY" | "INTERNAL"
            );
            assert_eq!(code.is_transient(), transient, "{name}");
        }
    }
}
