//! Wire types of the operator API (`/admin/v1/*`): what an operator (not an app's admin or user)
//! sends and gets back to manage apps, their custom fields and their accounts without editing
//! files or restarting nodes. Served by `portrait-server`'s `operator` module, spoken by the
//! `portrait-client` crate's `Operator` client (and through it the `portrait app|field|account`
//! commands) and by the web console. `docs/operator-api.md` is the reference.
//!
//! These are Portrait's own API, not a vendor's: JSON in snake case, HTTP status codes, and a
//! failure is [`OperatorError`] with a stable machine-readable `code` ([`error_code`]).
//!
//! Settings mirror the `[[apps]]` section of the config file: an app created here or in the file
//! has the same settings with the same names and defaults.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::schema::CustomKind;

/// Where an app's settings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppSource {
    /// Declared in the config file (`[[apps]]`) and never changed through this API.
    File,
    /// Created or changed through this API and kept in the store; wins over the file.
    Store,
}

/// Who a custom field's permission allows (as `read`/`write` in the config file).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    /// Ordinary users (the client API and SDKs).
    User,
    /// The app's admins (the REST API).
    Admin,
}

/// `POST /admin/v1/apps/{sdkappid}/fields`: a new custom field. Its name and type never change
/// once created, and a field is never deleted, only hidden (as with the vendor's console).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldAdd {
    /// The tag: `Tag_Profile_Custom_<key>` (key: 1–8 letters or digits, starting with a letter)
    /// or the legacy `Tag_Profile_Custom_<digits>_<key>`.
    pub name: String,
    /// Its value type.
    #[serde(rename = "type")]
    pub kind: CustomKind,
    /// Byte limit of a string value (1–500); ignored for integers. Default 500.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Who may read it. Default both.
    #[serde(default)]
    pub read: Option<Vec<Who>>,
    /// Who may write it. Default both.
    #[serde(default)]
    pub write: Option<Vec<Who>>,
}

/// `PATCH /admin/v1/apps/{sdkappid}/fields/{name}`: what may change of a field. Absent members
/// keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldPatch {
    /// A hidden field is neither read nor written by any API, as if it did not exist; its stored
    /// values are kept and come back when it is shown again.
    #[serde(default)]
    pub hidden: Option<bool>,
    /// Who may read it.
    #[serde(default)]
    pub read: Option<Vec<Who>>,
    /// Who may write it.
    #[serde(default)]
    pub write: Option<Vec<Who>>,
}

/// A custom field as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldView {
    /// The tag.
    pub name: String,
    /// Its value type.
    #[serde(rename = "type")]
    pub kind: CustomKind,
    /// Byte limit of a string value.
    pub max_length: usize,
    /// Who may read it.
    pub read: Vec<Who>,
    /// Who may write it.
    pub write: Vec<Who>,
    /// Hidden from every API ([`FieldPatch::hidden`]).
    pub hidden: bool,
}

/// `GET /admin/v1/apps/{sdkappid}/fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldList {
    /// Every field, hidden ones included, in the order they were added.
    pub fields: Vec<FieldView>,
}

/// `[apps.webhook]`: where and how `Profile.CallbackPortraitSet` is delivered. Absent members take
/// the config file's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The callback URL (http or https).
    pub url: String,
    /// Timeout of one attempt, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Deliveries in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Most undelivered changes of one account held in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<usize>,
    /// First retry delay, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_backoff_ms: Option<u64>,
    /// Longest retry delay, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_ms: Option<u64>,
    /// A change undelivered this long is dropped, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub give_up_after_ms: Option<u64>,
    /// The delivery lease between nodes, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

/// Calls per second of the client API (`/v1`), per user and for the whole app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientRateLimits {
    /// Reads of one user per second.
    pub user_reads: u32,
    /// Writes of one user per second.
    pub user_writes: u32,
    /// Reads of all users together per second.
    pub app_reads: u32,
    /// Writes of all users together per second.
    pub app_writes: u32,
}

/// Per-API calls per second of the REST API: `enabled` switches them all; the other members are
/// the API's last path segment (`portrait_get`, `kick`, …) → calls per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RateLimits {
    /// Master switch.
    pub enabled: bool,
    /// Per-API overrides.
    #[serde(flatten)]
    pub per_api: BTreeMap<String, u32>,
}

/// `POST /admin/v1/apps`: a new app. Absent members take the config file's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppCreate {
    /// The SDKAppID; a free one (1400000000–1999999999) is chosen when absent.
    #[serde(default)]
    pub sdkappid: Option<u64>,
    /// The secret key UserSigs are signed with; 64 random hex digits when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// Admin identifiers; `["administrator"]` when absent. Each becomes an account.
    #[serde(default)]
    pub admins: Option<Vec<String>>,
    /// Words refused in free-text profile values.
    #[serde(default)]
    pub sensitive_words: Option<Vec<String>>,
    /// REST API rate limits.
    #[serde(default)]
    pub rate_limits: Option<RateLimits>,
    /// Client API rate limits.
    #[serde(default)]
    pub client_rate_limits: Option<ClientRateLimits>,
    /// How far ahead of the server's clock a UserSig may be dated, seconds.
    #[serde(default)]
    pub usersig_clock_skew_secs: Option<u64>,
    /// Webhook; none when absent.
    #[serde(default)]
    pub webhook: Option<WebhookSettings>,
    /// The shard (`[store] shards`, or `home`) the app's data is placed on; when absent, the
    /// one with the fewest apps. Refused (400) on a node without shards, unless `home`.
    #[serde(default)]
    pub shard: Option<String>,
}

/// `PATCH /admin/v1/apps/{sdkappid}`: absent members keep their value; `"webhook": null` removes
/// the webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    /// A disabled app refuses every call of its admins and users (its data is kept).
    #[serde(default)]
    pub disabled: Option<bool>,
    /// Admin identifiers (the whole list).
    #[serde(default)]
    pub admins: Option<Vec<String>>,
    /// Sensitive words (the whole list).
    #[serde(default)]
    pub sensitive_words: Option<Vec<String>>,
    /// REST API rate limits.
    #[serde(default)]
    pub rate_limits: Option<RateLimits>,
    /// Client API rate limits.
    #[serde(default)]
    pub client_rate_limits: Option<ClientRateLimits>,
    /// UserSig clock skew, seconds.
    #[serde(default)]
    pub usersig_clock_skew_secs: Option<u64>,
    /// Webhook: a value sets it, `null` removes it, absent keeps it.
    #[serde(default, with = "double_option")]
    #[schemars(with = "Option<WebhookSettings>")]
    pub webhook: Option<Option<WebhookSettings>>,
}

/// An app as it is now. Never shows its secret key (see [`AppKey`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppView {
    /// The SDKAppID.
    pub sdkappid: u64,
    /// Where its settings come from.
    pub source: AppSource,
    /// Counts the changes made through this API (0 for an app only in the file). A `PATCH` may
    /// send it in `If-Match` to refuse a change made on stale data (412).
    pub revision: u64,
    /// Refusing every call.
    pub disabled: bool,
    /// Admin identifiers.
    pub admins: Vec<String>,
    /// Sensitive words.
    pub sensitive_words: Vec<String>,
    /// REST API rate limits.
    pub rate_limits: RateLimits,
    /// Client API rate limits.
    pub client_rate_limits: ClientRateLimits,
    /// UserSig clock skew, seconds.
    pub usersig_clock_skew_secs: u64,
    /// Webhook, if any.
    pub webhook: Option<WebhookSettings>,
    /// Custom fields, hidden ones included.
    pub custom_fields: Vec<FieldView>,
    /// Until when (Unix seconds) the key in use before the last rotation still verifies, if it
    /// still does.
    pub previous_key_valid_until: Option<u64>,
    /// The shard the app's data lives on (`home`: `[store] url`); absent: the home shard (or
    /// a node without shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// `GET /admin/v1/apps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppList {
    /// Every app this node serves, by SDKAppID.
    pub apps: Vec<AppView>,
}

/// `POST /admin/v1/apps/{sdkappid}/rotate-key`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotate {
    /// The new key; 64 random hex digits when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// How long the old key still verifies UserSigs, seconds (default 86400; 0 = not at all).
    #[serde(default)]
    pub grace_secs: Option<u64>,
}

/// `POST /admin/v1/apps/{sdkappid}/move`: move the app's data to another shard while it is
/// served (docs/deployment.md, "Shards").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppMove {
    /// The shard to move to (a name of `[store] shards`, or `home`).
    pub shard: String,
}

/// The answer of `POST /admin/v1/apps/{sdkappid}/move`: what the move did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppMoved {
    /// The SDKAppID.
    pub sdkappid: u64,
    /// The shard the app was on.
    pub from: String,
    /// The shard it is on now.
    pub to: String,
    /// Accounts copied by the first copy (0 when the target kept a copy from an earlier move).
    pub copied_accounts: u64,
    /// Changes replayed on the target from the source's change log.
    pub caught_up_changes: u64,
    /// The app's version on both shards when it switched.
    pub version: u64,
    /// Accounts read back from both shards and found equal.
    pub verified_accounts: u64,
    /// How long the app's writes waited (they wait, they do not fail), milliseconds.
    pub paused_ms: u64,
    /// The whole move, milliseconds.
    pub took_ms: u64,
}

/// An app's secret key: the answer of `POST /admin/v1/apps` (with the app),
/// `GET /admin/v1/apps/{sdkappid}/key` and `POST …/rotate-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppKey {
    /// The SDKAppID.
    pub sdkappid: u64,
    /// The key UserSigs are signed with now.
    pub key: String,
    /// Until when (Unix seconds) the previous key still verifies, if it does.
    pub previous_key_valid_until: Option<u64>,
}

/// The answer of `POST /admin/v1/apps`: the app and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppCreated {
    /// The app.
    pub app: AppView,
    /// Its key (shown here and by `GET …/key`, never in [`AppView`]).
    pub key: String,
}

/// `GET /admin/v1/apps/{sdkappid}/accounts?prefix=&after=&limit=`: accounts by UserID order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountList {
    /// UserIDs, ascending.
    pub accounts: Vec<String>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// One change of an account, from the change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeView {
    /// The account's version after the change.
    pub version: u64,
    /// `import`, `set` or `delete`.
    pub kind: String,
    /// Who made it: the user, an admin identifier, or `portrait`.
    pub operator: String,
    /// The caller's address, when known.
    pub client_ip: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Tag → new value (string or integer) of a `set`.
    pub items: BTreeMap<String, serde_json::Value>,
}

/// `GET /admin/v1/apps/{sdkappid}/accounts/{user_id}`: an account's profile, version and recent
/// changes (newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountView {
    /// The UserID.
    pub user_id: String,
    /// Its version: the app's change-log version of its last change.
    pub version: u64,
    /// Tag → value of every field it has, hidden custom fields included.
    pub profile: BTreeMap<String, serde_json::Value>,
    /// Its most recent changes still in the change log, newest first (at most 50).
    pub changes: Vec<ChangeView>,
    /// Unix second up to which its UserSigs are revoked by a kick, if kicked.
    pub kicked_until: Option<u64>,
}

/// `GET /admin/v1/apps/{sdkappid}/webhook`: the delivery state on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookState {
    /// Whether a webhook is configured.
    pub configured: bool,
    /// Change-log version up to which every change was delivered (or given up on).
    pub cursor: u64,
    /// The app's newest change-log version.
    pub head: u64,
    /// `head - cursor`.
    pub lag: u64,
    /// Whether this node holds the delivery lease (delivers for the cluster).
    pub delivering_here: bool,
    /// The latest failed attempts on this node, newest first (at most 20).
    pub recent_failures: Vec<WebhookFailure>,
}

/// One failed webhook attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookFailure {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The account whose change it was.
    pub user_id: String,
    /// Its change-log version.
    pub version: u64,
    /// What went wrong (HTTP status, timeout, refused connection, …).
    pub error: String,
}

/// Every failure of the operator API: an HTTP status (4xx/5xx) and this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorError {
    /// What went wrong.
    pub error: OperatorErrorBody,
}

/// The body of [`OperatorError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorErrorBody {
    /// One of [`error_code`]'s values.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
}

/// The `code` of an [`OperatorError`], with its HTTP status.
pub mod error_code {
    /// 401: no `Authorization: Bearer <token>`, or the wrong token.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 429: too many failed sign-ins; retry after a second.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// 400: the body or a parameter is malformed or out of range.
    pub const INVALID: &str = "invalid";
    /// 404: no such app.
    pub const APP_NOT_FOUND: &str = "app_not_found";
    /// 404: no such custom field.
    pub const FIELD_NOT_FOUND: &str = "field_not_found";
    /// 404: no such account.
    pub const ACCOUNT_NOT_FOUND: &str = "account_not_found";
    /// 409: an app with this SDKAppID exists.
    pub const APP_EXISTS: &str = "app_exists";
    /// 409: a field with this name exists (names and types never change).
    pub const FIELD_EXISTS: &str = "field_exists";
    /// 409: the app already has the most custom fields allowed (20, hidden ones included).
    pub const TOO_MANY_FIELDS: &str = "too_many_fields";
    /// 409: a move between shards was refused or did not verify (the message says why); the
    /// app stays where it was, its writes go on there.
    pub const MOVE_REFUSED: &str = "move_refused";
    /// 504: a move between shards did not finish within the time its answer waits (two
    /// minutes); it goes on by itself and either switches or leaves the app where it was (the
    /// app's `shard` says which).
    pub const MOVE_UNFINISHED: &str = "move_unfinished";
    /// 412: `If-Match` names a revision that is not the app's current one.
    pub const REVISION_MISMATCH: &str = "revision_mismatch";
    /// 503: the store could not be reached or failed; nothing was changed.
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
    /// 404: no such operator path, or the operator API is off on this node (no
    /// `[operator] token` or `token_file`).
    pub const NOT_FOUND: &str = "not_found";
    /// 405: the path exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 500: the server failed (logged on the node; the request may be retried).
    pub const INTERNAL: &str = "internal";
}

/// Serde for `Option<Option<T>>`: absent → `None`, `null` → `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            None | Some(None) => s.serialize_none(),
            Some(Some(t)) => t.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_absent_from_null_webhook() {
        let absent: AppPatch = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.webhook, None);
        let null: AppPatch = serde_json::from_str(r#"{"webhook":null}"#).unwrap();
        assert_eq!(null.webhook, Some(None));
        let set: AppPatch = serde_json::from_str(r#"{"webhook":{"url":"http://x/"}}"#).unwrap();
        assert_eq!(set.webhook.unwrap().unwrap().url, "http://x/");
    }

    #[test]
    fn unknown_members_are_refused() {
        assert!(serde_json::from_str::<AppPatch>(r#"{"disabld":true}"#).is_err());
        assert!(serde_json::from_str::<FieldAdd>(r#"{"name":"a","type":"string","x":1}"#).is_err());
    }
}
