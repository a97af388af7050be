//! The vendor error-code table. Numbers and meanings come from `shared/spec/vendor-apis.md`
//! (§1.6 profile codes, §2.1 common REST codes, §2.2 account/auth codes). Choosing *which* code a
//! failure gets happens in one place per layer (`FieldError::code`, `SigError::code`, and the
//! server's `error.rs`); this module only names the numbers.

use std::fmt;

/// A Tencent Cloud IM `ErrorCode`. `0` means success.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct ErrorCode(pub u32);

macro_rules! codes {
    ($( $(#[$m:meta])* $name:ident = $num:literal, $info:literal; )*) => {
        impl ErrorCode {
            $( $(#[$m])* pub const $name: ErrorCode = ErrorCode($num); )*

            /// The default `ErrorInfo` text for this code (a short English sentence).
            pub fn default_info(self) -> &'static str {
                match self.0 { $( $num => $info, )* _ => "error" }
            }
        }
    };
}

codes! {
    /// Success.
    OK = 0, "";
    /// Profile: request parameter error.
    PROFILE_BAD_REQUEST = 40001, "request parameter error";
    /// Profile: the UserIDs to read (`To_Account`) were not given.
    PROFILE_MISSING_TO_ACCOUNT = 40002, "To_Account is missing";
    /// Profile: the requested UserID does not exist (was never imported, or was deleted).
    PROFILE_ACCOUNT_NOT_FOUND = 40003, "requested UserID does not exist";
    /// Profile: the request needs app admin permission.
    PROFILE_NEEDS_ADMIN = 40004, "request needs app admin permission";
    /// Profile: a field value contains a sensitive word.
    PROFILE_SENSITIVE_WORD = 40005, "profile field contains sensitive words";
    /// Profile: internal server error; retry later.
    PROFILE_INTERNAL = 40006, "internal server error, retry later";
    /// Profile: no permission to read the field.
    PROFILE_NO_READ_PERMISSION = 40007, "no permission to read the profile field";
    /// Profile: no permission to write the field.
    PROFILE_NO_WRITE_PERMISSION = 40008, "no permission to write the profile field";
    /// Profile: the field tag does not exist.
    PROFILE_UNKNOWN_TAG = 40009, "the profile field tag does not exist";
    /// Profile: the value exceeds the field's byte limit.
    PROFILE_VALUE_TOO_LONG = 40601, "profile field value exceeds its byte limit";
    /// Profile: invalid value for a standard field.
    PROFILE_INVALID_VALUE = 40605, "invalid value for a standard field";
    /// Profile: wrong value type.
    PROFILE_WRONG_TYPE = 40610, "invalid value type for the field";
    /// REST: HTTP parse error.
    HTTP_PARSE = 60002, "HTTP parse error, check the URL format";
    /// REST: JSON parse error in the request body.
    JSON_PARSE = 60003, "JSON parse error in the request body";
    /// REST: account or signature error in the URL.
    URL_ACCOUNT = 60004, "account or signature error in the URL";
    /// REST: SDKAppID invalid.
    SDKAPPID_INVALID = 60006, "SDKAppID invalid";
    /// REST: API call frequency limit exceeded.
    RATE_LIMITED = 60007, "REST API call frequency limit exceeded";
    /// REST: request resource error (unknown API path).
    UNKNOWN_API = 60009, "request resource error, check the URL";
    /// REST: SDKAppID missing from the URL.
    SDKAPPID_MISSING = 60012, "SDKAppID missing from the URL";
    /// REST: account must be a string.
    ACCOUNT_TYPE = 60015, "wrong account type in the body, account must be a string";
    /// UserSig expired.
    SIG_EXPIRED = 70001, "UserSig expired, generate a new one";
    /// UserSig is empty.
    SIG_EMPTY = 70002, "UserSig length is 0";
    /// UserSig cannot be decoded.
    SIG_UNDECODABLE = 70003, "UserSig invalid, it cannot be parsed";
    /// UserSig invalid (Portrait: dated further in the future than the allowed clock skew).
    SIG_INVALID = 70005, "UserSig invalid";
    /// UserSig HMAC does not match (wrong key or tampered).
    SIG_BAD_HMAC = 70009, "UserSig verification failed, check the SDKAppID and key";
    /// UserID in the request does not match the UserSig.
    SIG_IDENTIFIER_MISMATCH = 70013, "UserID in the request does not match the UserSig";
    /// SDKAppID in the request does not match the UserSig.
    SIG_SDKAPPID_MISMATCH = 70014, "SDKAppID in the request does not match the UserSig";
    /// SDKAppID not found.
    SDKAPPID_NOT_FOUND = 70020, "SDKAppID not found";
    /// Account does not exist / not imported.
    ACCOUNT_NOT_FOUND = 70107, "requested UserID does not exist";
    /// Invalid batch quantity.
    ACCOUNT_BATCH_SIZE = 70206, "invalid batch quantity";
    /// Account API: invalid parameter.
    ACCOUNT_BAD_REQUEST = 70402, "invalid parameter";
    /// Account API: needs app admin permission.
    ACCOUNT_NEEDS_ADMIN = 70403, "request needs app admin permission";
    /// Account API: internal server error.
    ACCOUNT_INTERNAL = 70500, "internal server error";
    /// Portrait extension (client API): `ExpectedVersion` is not the profile's current version.
    VERSION_CONFLICT = 49001, "the profile changed since the expected version; read it again";
    /// Portrait extension (WebSocket): too many subscriptions on one connection.
    TOO_MANY_SUBSCRIPTIONS = 49002, "too many subscribed accounts on this connection";
    /// Portrait extension (WebSocket): too many connections for one user.
    TOO_MANY_CONNECTIONS = 49003, "too many connections for this user";
    /// Portrait extension (WebSocket): a frame that is not a valid op.
    BAD_FRAME = 49004, "invalid WebSocket frame";
    /// Portrait extension (WebSocket): the catch-up starts before the oldest change still kept
    /// (the change log was pruned); re-read the profiles shown.
    CHANGES_PRUNED = 49005, "changes since the given version are no longer all kept; read the profiles again";
}

impl ErrorCode {
    /// `true` for `0`.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
