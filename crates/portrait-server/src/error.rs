//! The server's error type and **the only place** where failures become vendor error codes and
//! response envelopes.
//!
//! The same failure can have a different code depending on the API family (a bad body is 40001 on
//! profile APIs and 70402 on account APIs; an internal error is 40006 or 70500), so handlers
//! reply through [`reply`] (or [`reply_raw`]) with their [`Family`]. HTTP status is always 200, as with the vendor.
//! Internal failures are logged here once and shown to clients only as a generic message.
//!
//! `ErrorInfo` begins with the vendor's error name wherever the vendor documents show one
//! ([`vendor_name`]), followed by `": "` and Portrait's own explanation, e.g.
//! `Err_Profile_Comm_Decode_Fail: request body: ProfileItem: invalid type: map, expected a sequence`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portrait_core::wire::Envelope;
use portrait_core::{ErrorCode, FieldError, Identifier, SigError};
use portrait_store::StoreError;
use serde::Serialize;

use crate::metrics::http::Outcome;

/// Result alias of the server layer.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Which vendor API family a request belongs to; decides family-specific codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `v4/profile/*` and the client API `/v1/*`: 40xxx codes, envelope carries `ErrorDisplay`.
    Profile,
    /// `v4/im_open_login_svc/*`: 70xxx codes.
    Account,
    /// Anything else under the REST root (unknown APIs).
    Rest,
    /// The operator API (`/admin/v1/*`): HTTP statuses and [`OpError`]'s JSON, never the
    /// vendor envelope.
    Operator,
}

impl Family {
    /// The family of a request path.
    pub fn of_path(path: &str) -> Family {
        if path == "/admin/v1" || path.starts_with("/admin/v1/") {
            Family::Operator
        } else if path.starts_with("/v4/profile/") || path.starts_with("/v1/") {
            Family::Profile
        } else if path.starts_with("/v4/im_open_login_svc/") {
            Family::Account
        } else {
            Family::Rest
        }
    }
}

/// The vendor's error names, each with the code it goes with and the document that shows it. These
/// are every error name in the vendor documents (`shared/seeds/*.txt`) and the spec
/// (`shared/spec/vendor-apis.md`); [`ApiError::vendor_name`] picks one per failure.
pub mod vendor_name {
    /// 40001 on profile APIs: the body does not decode into the request (seed 002 `portrait_set`
    /// and seed 003 webim response examples; spec §1.4).
    pub const PROFILE_DECODE_FAIL: &str = "Err_Profile_Comm_Decode_Fail";
    /// 40003 on profile APIs: the account was never imported or was deleted. (Not in the seeds;
    /// Portrait has always answered it, in the vendor's naming style, for `portrait_get`'s
    /// per-user results.)
    pub const PROFILE_ACCOUNT_NOT_EXIST: &str = "Err_Profile_Account_Not_Exist";
    /// 40006 per user in `portrait_get`: that user's custom data could not be read (seed 004,
    /// response example 4; spec §1.5).
    pub const PROFILE_READ_CUSTOM_DATA_FAIL: &str = "Err_Profile_PortraitGet_Read_Custom_Data_Fail";
    /// 70107 on account APIs: the UserID does not exist / was not imported (spec §2.2, §4
    /// `account_delete` per-item result).
    pub const ACCOUNT_NOT_EXIST: &str = "Err_TLS_PT_Open_Login_Account_Not_Exist";

    /// `"<name>: <detail>"`, the `ErrorInfo` / `ResultInfo` form.
    pub fn with_detail(name: &str, detail: &str) -> String {
        format!("{name}: {detail}")
    }
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The URL query cannot be parsed (60002).
    #[error("cannot parse the URL query: {0}")]
    HttpParse(String),
    /// The body is not JSON (60003).
    #[error("{0}")]
    Json(String),
    /// The body is JSON but does not decode into the request: a field of the wrong type, a
    /// required field missing, not an object (40001 `Err_Profile_Comm_Decode_Fail` / 70402).
    #[error("{0}")]
    Decode(String),
    /// A parameter is invalid (a list empty or too long, a bad UserID, …) (40001 / 70402).
    #[error("{0}")]
    BadRequest(String),
    /// An account in the body is not a string (60015).
    #[error("{0}")]
    AccountType(String),
    /// `To_Account` missing or empty (40002).
    #[error("To_Account is missing or empty")]
    MissingToAccount,
    /// The account does not exist (40003 / 70107).
    #[error("UserID {0:?} does not exist")]
    AccountNotFound(String),
    /// The signed-in user of a client call was never imported or was deleted (70107).
    #[error("UserID {0:?} is not imported; import it with account_import first")]
    UserNotImported(String),
    /// `ExpectedVersion` is stale (49001).
    #[error(
        "the profile is at version {current}, not the expected version {expected}; read it again"
    )]
    VersionConflict {
        /// What the client expected.
        expected: u64,
        /// The profile's current version.
        current: u64,
    },
    /// The caller is not an app admin (40004 / 70403).
    #[error("identifier {0:?} is not an app admin")]
    NotAdmin(String),
    /// A profile field failed validation or permission checks.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// UserSig refused.
    #[error(transparent)]
    Sig(#[from] SigError),
    /// `sdkappid` missing from the URL (60012).
    #[error("sdkappid is missing from the URL")]
    SdkAppIdMissing,
    /// `sdkappid` is not a number (60006).
    #[error("sdkappid {0:?} is not a valid SDKAppID")]
    SdkAppIdInvalid(String),
    /// No such app on this server (70020).
    #[error("SDKAppID {0} not found")]
    AppNotFound(u64),
    /// `identifier` missing from the URL (60004).
    #[error("identifier is missing from the URL")]
    IdentifierMissing,
    /// Over the app's per-API rate limit (60007).
    #[error("{0}: over the app's rate limit, retry later")]
    RateLimited(&'static str),
    /// A client-API call over the user's or the app's client rate limit (60007).
    #[error("{0}")]
    ClientRateLimited(String),
    /// Unknown API path (60009).
    #[error("unknown API {0}")]
    UnknownApi(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is our fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A failed write of `user`'s profile (expected at version `expected`, when given): a missing
    /// profile is the account's absence (40003 / 70107), a version conflict is 49001 with both
    /// versions, anything else a storage failure.
    pub fn from_profile_write(e: StoreError, user: &Identifier, expected: Option<u64>) -> Self {
        match e {
            StoreError::NotFound => ApiError::AccountNotFound(user.as_str().to_owned()),
            StoreError::VersionConflict { current } => ApiError::VersionConflict {
                expected: expected.unwrap_or_default(),
                current,
            },
            e => e.into(),
        }
    }

    /// The vendor code for this failure in `family`.
    pub fn code(&self, family: Family) -> ErrorCode {
        let account = family == Family::Account;
        match self {
            ApiError::HttpParse(_) => ErrorCode::HTTP_PARSE,
            ApiError::Json(_) => ErrorCode::JSON_PARSE,
            ApiError::BadRequest(_) | ApiError::Decode(_) if account => {
                ErrorCode::ACCOUNT_BAD_REQUEST
            }
            ApiError::BadRequest(_) | ApiError::Decode(_) => ErrorCode::PROFILE_BAD_REQUEST,
            ApiError::AccountType(_) => ErrorCode::ACCOUNT_TYPE,
            ApiError::MissingToAccount => ErrorCode::PROFILE_MISSING_TO_ACCOUNT,
            ApiError::AccountNotFound(_) | ApiError::Store(StoreError::NotFound) if account => {
                ErrorCode::ACCOUNT_NOT_FOUND
            }
            ApiError::AccountNotFound(_) | ApiError::Store(StoreError::NotFound) => {
                ErrorCode::PROFILE_ACCOUNT_NOT_FOUND
            }
            ApiError::UserNotImported(_) => ErrorCode::ACCOUNT_NOT_FOUND,
            ApiError::VersionConflict { .. } => ErrorCode::VERSION_CONFLICT,
            ApiError::NotAdmin(_) if account => ErrorCode::ACCOUNT_NEEDS_ADMIN,
            ApiError::NotAdmin(_) => ErrorCode::PROFILE_NEEDS_ADMIN,
            ApiError::Field(e) => e.code(),
            ApiError::Sig(e) => e.code(),
            ApiError::SdkAppIdMissing => ErrorCode::SDKAPPID_MISSING,
            ApiError::SdkAppIdInvalid(_) => ErrorCode::SDKAPPID_INVALID,
            ApiError::AppNotFound(_) => ErrorCode::SDKAPPID_NOT_FOUND,
            ApiError::IdentifierMissing => ErrorCode::URL_ACCOUNT,
            ApiError::RateLimited(_) | ApiError::ClientRateLimited(_) => ErrorCode::RATE_LIMITED,
            ApiError::UnknownApi(_) => ErrorCode::UNKNOWN_API,
            ApiError::Store(_) | ApiError::Internal(_) if account => ErrorCode::ACCOUNT_INTERNAL,
            ApiError::Store(_) | ApiError::Internal(_) => ErrorCode::PROFILE_INTERNAL,
        }
    }

    /// The vendor's name for this failure in `family`, where the vendor documents show one.
    pub fn vendor_name(&self, family: Family) -> Option<&'static str> {
        match (self, family) {
            (ApiError::Decode(_), Family::Profile) => Some(vendor_name::PROFILE_DECODE_FAIL),
            (
                ApiError::AccountNotFound(_) | ApiError::Store(StoreError::NotFound),
                Family::Profile,
            ) => Some(vendor_name::PROFILE_ACCOUNT_NOT_EXIST),
            (
                ApiError::AccountNotFound(_) | ApiError::Store(StoreError::NotFound),
                Family::Account,
            )
            | (ApiError::UserNotImported(_), _) => Some(vendor_name::ACCOUNT_NOT_EXIST),
            _ => None,
        }
    }

    /// Whether this is our fault (logged, and hidden from the client).
    pub fn is_internal(&self) -> bool {
        matches!(self, ApiError::Internal(_))
            || matches!(self, ApiError::Store(e) if !matches!(e, StoreError::NotFound))
    }

    /// The `ErrorInfo` text in `family`: the vendor's name if it has one ([`Self::vendor_name`]),
    /// then the error's own message; a generic message for internal failures. Also the
    /// `ResultInfo` of per-item failures.
    pub fn error_info(&self, family: Family) -> String {
        if self.is_internal() {
            return self.code(family).default_info().to_owned();
        }
        let detail = match self {
            ApiError::Store(StoreError::NotFound) => "requested UserID does not exist".to_owned(),
            e => e.to_string(),
        };
        match self.vendor_name(family) {
            Some(name) => vendor_name::with_detail(name, &detail),
            None => detail,
        }
    }

    /// The failure envelope for `family`, logging internal failures once.
    pub fn envelope(&self, family: Family) -> Envelope {
        let code = self.code(family);
        if self.is_internal() {
            tracing::error!(error = ?self, code = code.0, "internal error");
        } else {
            tracing::debug!(error = %self, code = code.0, "request refused");
        }
        Envelope::fail(code, self.error_info(family), family == Family::Profile)
    }
}

/// The error frame for a storage failure in the middle of a WebSocket session (the session then
/// closes, retryably): logged here once; the client sees only the generic internal code and text
/// (40006), never the cause.
pub fn ws_store_failure(e: &StoreError) -> (ErrorCode, String) {
    tracing::error!(error = %e, "websocket: store failure; closing the connection");
    (
        ErrorCode::PROFILE_INTERNAL,
        ErrorCode::PROFILE_INTERNAL.default_info().into(),
    )
}

/// The `ResultCode`/`ResultInfo` pairs of per-item failures inside a successful answer.
pub mod item_result {
    use portrait_core::ErrorCode;

    use super::vendor_name;

    /// `portrait_get` (and the client API's reads): an account that does not exist (40003, the
    /// vendor's name, then ours).
    pub fn profile_not_found() -> (ErrorCode, &'static str) {
        static INFO: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let info = INFO.get_or_init(|| {
            vendor_name::with_detail(
                vendor_name::PROFILE_ACCOUNT_NOT_EXIST,
                "requested UserID does not exist",
            )
        });
        (ErrorCode::PROFILE_ACCOUNT_NOT_FOUND, info)
    }

    /// `account_delete`: an account that does not exist (70107, the vendor's name alone).
    pub fn account_not_found() -> (ErrorCode, &'static str) {
        (ErrorCode::ACCOUNT_NOT_FOUND, vendor_name::ACCOUNT_NOT_EXIST)
    }
}

/// A success body: the envelope followed by the API's own fields.
#[derive(Serialize)]
struct Reply<T: Serialize> {
    #[serde(flatten)]
    envelope: Envelope,
    #[serde(flatten)]
    body: T,
}

/// An API with no body besides the envelope.
#[derive(Serialize)]
pub struct Empty {}

/// A refusal made before or around routing (the edge's body limit and deadline): the vendor
/// envelope of `family`, or for the operator API its own JSON error with an HTTP status.
pub fn refuse(family: Family, e: ApiError) -> Response {
    if family != Family::Operator {
        return reply::<()>(family, Err(e));
    }
    match e {
        ApiError::Internal(e) => OpError::Internal(e),
        ApiError::Store(e) => OpError::Store(e),
        e => OpError::Invalid(e.to_string()),
    }
    .into_response()
}

/// Every failure of the operator API (`/admin/v1`, [`crate::operator`]): each maps to an HTTP
/// status and a stable `portrait_core::operator::error_code` here, and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No such path, or the operator API is off on this node (404).
    #[error("{0}")]
    NotFound(String),
    /// The path exists, the method does not (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// No or a wrong `Authorization: Bearer` token (401).
    #[error("an operator token is required: Authorization: Bearer <token>")]
    Unauthorized,
    /// Too many failed attempts on this node within a second (429).
    #[error("too many failed attempts; retry after a second")]
    TooManyAttempts,
    /// A malformed body or parameter (400).
    #[error("{0}")]
    Invalid(String),
    /// No such app (404).
    #[error("no app with SDKAppID {0}")]
    AppNotFound(u64),
    /// No such custom field (404).
    #[error("no custom field {0:?}")]
    FieldNotFound(String),
    /// No such account (404).
    #[error("no account {0:?}")]
    AccountNotFound(String),
    /// The SDKAppID is taken (409).
    #[error("an app with SDKAppID {0} exists")]
    AppExists(u64),
    /// The field exists (409).
    #[error("custom field {0:?} exists; a field's name and type never change")]
    FieldExists(String),
    /// The app has the most custom fields allowed (409).
    #[error("the app has {max} custom fields (hidden ones included), the most allowed", max = portrait_core::schema::MAX_CUSTOM_FIELDS)]
    TooManyFields,
    /// `If-Match` names another revision (412).
    #[error("the app is at revision {current}, not {expected}; read it again")]
    RevisionMismatch {
        /// The revision the caller named.
        expected: u64,
        /// The app's revision.
        current: u64,
    },
    /// A move between shards refused or failed to verify (409); the app stays where it was.
    #[error("{0}")]
    MoveRefused(String),
    /// A move between shards that did not answer within its wait (504); it goes on by itself.
    #[error("{0}")]
    MoveUnfinished(String),
    /// Storage failed (503; logged, not shown).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is our fault (500; logged, not shown).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl OpError {
    /// A failure of applying or reading app settings: a store failure is
    /// [`OpError::Store`] (503), anything else [`OpError::Internal`].
    pub fn from_anyhow(e: anyhow::Error) -> Self {
        match e.downcast::<StoreError>() {
            Ok(e) => OpError::Store(e),
            Err(e) => OpError::Internal(e),
        }
    }

    /// The HTTP status and `error_code` of this failure.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        use portrait_core::operator::error_code as c;
        match self {
            OpError::NotFound(_) => (StatusCode::NOT_FOUND, c::NOT_FOUND),
            OpError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, c::METHOD_NOT_ALLOWED),
            OpError::Unauthorized => (StatusCode::UNAUTHORIZED, c::UNAUTHORIZED),
            OpError::TooManyAttempts => (StatusCode::TOO_MANY_REQUESTS, c::TOO_MANY_ATTEMPTS),
            OpError::Invalid(_) => (StatusCode::BAD_REQUEST, c::INVALID),
            OpError::AppNotFound(_) => (StatusCode::NOT_FOUND, c::APP_NOT_FOUND),
            OpError::FieldNotFound(_) => (StatusCode::NOT_FOUND, c::FIELD_NOT_FOUND),
            OpError::AccountNotFound(_) => (StatusCode::NOT_FOUND, c::ACCOUNT_NOT_FOUND),
            OpError::AppExists(_) => (StatusCode::CONFLICT, c::APP_EXISTS),
            OpError::FieldExists(_) => (StatusCode::CONFLICT, c::FIELD_EXISTS),
            OpError::TooManyFields => (StatusCode::CONFLICT, c::TOO_MANY_FIELDS),
            OpError::RevisionMismatch { .. } => {
                (StatusCode::PRECONDITION_FAILED, c::REVISION_MISMATCH)
            }
            OpError::MoveRefused(_) => (StatusCode::CONFLICT, c::MOVE_REFUSED),
            OpError::MoveUnfinished(_) => (StatusCode::GATEWAY_TIMEOUT, c::MOVE_UNFINISHED),
            OpError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, c::STORE_UNAVAILABLE),
            OpError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, c::INTERNAL),
        }
    }
}

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let message = match &self {
            OpError::Store(e) => {
                tracing::error!(error = %e, "operator API: store failure");
                "the store is unavailable; nothing was changed, retry later".to_owned()
            }
            OpError::Internal(e) => {
                tracing::error!(error = ?e, "operator API: internal error");
                "internal server error, retry later".to_owned()
            }
            e => {
                tracing::debug!(error = %e, code, "operator API: refused");
                e.to_string()
            }
        };
        let body = portrait_core::operator::OperatorError {
            error: portrait_core::operator::OperatorErrorBody {
                code: code.to_owned(),
                message,
            },
        };
        let mut resp = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Turns a handler result into the vendor's response: HTTP 200, JSON envelope.
pub fn reply<T: Serialize>(family: Family, result: Result<T>) -> Response {
    let outcome = outcome(family, &result);
    let mut response = respond(match result {
        Ok(body) => serde_json::to_vec(&Reply {
            envelope: Envelope::ok(family == Family::Profile),
            body,
        }),
        Err(e) => serde_json::to_vec(&e.envelope(family)),
    });
    response.extensions_mut().insert(outcome);
    response
}

/// A success body that writes its own JSON fields, for the hot read path (`portrait_get` answers
/// up to 100 profiles; see `profiles::ReadAnswer`), where going through serde's data model cost
/// a quarter of the CPU.
pub trait RawFields {
    /// Appends `,"Name":value` for each field that follows the envelope's, as valid JSON.
    fn write_fields(&self, out: &mut Vec<u8>);
    /// About how many bytes [`RawFields::write_fields`] appends (to allocate once).
    fn size_hint(&self) -> usize;
}

/// [`reply`] for a [`RawFields`] body: the same envelope, then the body's own fields.
pub fn reply_raw<T: RawFields>(family: Family, result: Result<T>) -> Response {
    let outcome = outcome(family, &result);
    let mut response = respond(match result {
        Ok(body) => {
            let head = ok_head(family == Family::Profile);
            let mut out = Vec::with_capacity(head.len() + 1 + body.size_hint());
            out.extend_from_slice(head);
            body.write_fields(&mut out);
            out.push(b'}');
            Ok(out)
        }
        Err(e) => serde_json::to_vec(&e.envelope(family)),
    });
    response.extensions_mut().insert(outcome);
    response
}

/// The success envelope's JSON without its closing brace, serialized once per shape.
fn ok_head(with_display: bool) -> &'static [u8] {
    static HEADS: [std::sync::OnceLock<Vec<u8>>; 2] = [const { std::sync::OnceLock::new() }; 2];
    HEADS[usize::from(with_display)].get_or_init(|| {
        let mut json = serde_json::to_vec(&Envelope::ok(with_display)).expect("plain struct");
        debug_assert_eq!(json.last(), Some(&b'}'));
        json.pop();
        json
    })
}

/// The answer's vendor code, which the edge counts per route (`crate::metrics::http`).
fn outcome<T>(family: Family, result: &Result<T>) -> Outcome {
    match result {
        Ok(_) => Outcome(0),
        Err(e) => Outcome(e.code(family).0),
    }
}

fn respond(bytes: serde_json::Result<Vec<u8>>) -> Response {
    match bytes {
        Ok(b) => json_response(b),
        Err(e) => {
            // Serializing our own types cannot fail short of a bug; still answer in shape.
            tracing::error!(error = %e, "response serialization failed");
            let env = Envelope::fail(
                ErrorCode::PROFILE_INTERNAL,
                ErrorCode::PROFILE_INTERNAL.default_info(),
                true,
            );
            json_response(serde_json::to_vec(&env).unwrap_or_default())
        }
    }
}

fn json_response(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Parses a JSON body: invalid JSON → 60003 (the vendor's common "JSON parse error in the request
/// body"), valid JSON that does not decode into the request → [`ApiError::Decode`].
///
/// # Errors
/// [`ApiError::Json`] or [`ApiError::Decode`].
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Decode(format!("request body: {e}")),
        _ if body.iter().all(u8::is_ascii_whitespace) => {
            ApiError::Json("request body is empty; send a JSON object".into())
        }
        _ => ApiError::Json(format!("request body is not valid JSON: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_specific_codes_differ_only_where_the_vendor_differs() {
        let bad = ApiError::BadRequest("x".into());
        assert_eq!(bad.code(Family::Profile).0, 40001);
        assert_eq!(bad.code(Family::Account).0, 70402);
        let not_admin = ApiError::NotAdmin("u".into());
        assert_eq!(not_admin.code(Family::Profile).0, 40004);
        assert_eq!(not_admin.code(Family::Account).0, 70403);
        let down = ApiError::Store(StoreError::Unavailable("db down".into()));
        assert_eq!(down.code(Family::Profile).0, 40006);
        assert_eq!(down.code(Family::Account).0, 70500);
        assert_eq!(
            ApiError::Store(StoreError::NotFound)
                .code(Family::Account)
                .0,
            70107
        );
    }

    #[test]
    fn error_info_begins_with_the_vendor_name_where_the_documents_show_one() {
        let decode = ApiError::Decode("request body: ProfileItem: invalid type".into());
        let env = decode.envelope(Family::Profile);
        assert_eq!(env.error_code.0, 40001);
        assert_eq!(
            env.error_info,
            "Err_Profile_Comm_Decode_Fail: request body: ProfileItem: invalid type"
        );
        // No vendor name is documented for 70402: the detail alone.
        assert_eq!(
            decode.error_info(Family::Account),
            "request body: ProfileItem: invalid type"
        );
        assert_eq!(
            ApiError::AccountNotFound("bob".into()).error_info(Family::Profile),
            "Err_Profile_Account_Not_Exist: UserID \"bob\" does not exist"
        );
        assert_eq!(
            ApiError::Store(StoreError::NotFound).error_info(Family::Account),
            "Err_TLS_PT_Open_Login_Account_Not_Exist: requested UserID does not exist"
        );
        // A plain parameter error has no documented name.
        assert_eq!(
            ApiError::BadRequest("TagList is empty".into()).error_info(Family::Profile),
            "TagList is empty"
        );
    }

    #[test]
    fn internal_errors_are_not_shown_to_clients() {
        let e = ApiError::Store(StoreError::Unavailable("password=hunter2 host=db".into()));
        let env = e.envelope(Family::Profile);
        assert!(!env.error_info.contains("hunter2"));
        assert_eq!(env.error_info, "internal server error, retry later");
    }

    #[test]
    fn malformed_json_and_wrong_shapes_get_different_codes() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: Option<Vec<String>>,
        }
        assert!(matches!(
            parse_body::<T>(b"{not json"),
            Err(ApiError::Json(_))
        ));
        assert!(matches!(parse_body::<T>(b""), Err(ApiError::Json(_))));
        assert!(matches!(
            parse_body::<T>(br#"{"a": 5}"#),
            Err(ApiError::Decode(_))
        ));
        assert!(parse_body::<T>(br#"{"a": ["x"], "extra": true}"#).is_ok());
    }
}
