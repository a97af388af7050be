//! Portrait's storage layer: one [`Store`] trait, per-use-case methods, and its backends.
//!
//! * [`sqlite`]: the embedded default (`sqlite://<data_dir>/portrait.db`), WAL + `synchronous=FULL`
//!   so that an acknowledged write survives `kill -9` and power loss.
//! * [`postgres`]: PostgreSQL (`postgres://user@host/db`), for several nodes sharing one
//!   database; a bounded pool that fails fast ([`StoreError::Unavailable`]) while the database is
//!   down and recovers by itself when it is back.
//! * [`cache`]: [`cache::CachedStore`], an in-memory read cache in front of any backend.
//! * [`sharded`]: [`sharded::Sharded`], apps spread over several PostgreSQL clusters (shards),
//!   routed by app, and moved between them online.
//! * [`timed`]: [`timed::Timed`], the store-latency metrics around a backend.
//! * [`dump`]: moving data between stores (`portrait export | import | migrate`), versions
//!   preserved, through [`Store::dump_app`] / [`Store::restore_app`].
//! * `testkit` (feature `testkit`): the conformance suite every backend must pass.
//!
//! The two backends share one [`Store`] implementation (`backend.rs`: each method written once,
//! over what each backend does its own way) and their reads (`read.rs`).
//!
//! The backends (and sqlx, tokio) are the default feature `sql`; without it only the trait, the
//! types, the cache and the codec remain, which is all the fuzz targets (`fuzz/`) build.
//!
//! Every write bumps the app's version and appends to the change log in the *same transaction*
//! as the data; the change log is what realtime push and webhooks replay from.
//!
//! What must not live here: HTTP, vendor error codes, or validation of field values — callers pass
//! values already parsed by `portrait_core::schema`.
#![warn(missing_docs)]
// Without the backends, much of the codec has no caller (the fuzz build).
#![cfg_attr(not(feature = "sql"), allow(dead_code, unused_imports))]

use std::collections::BTreeMap;

use async_trait::async_trait;
use portrait_core::{Identifier, ProfileValue, Tag};

pub mod apps;
pub use apps::AppRecord;
#[cfg(feature = "sql")]
mod backend;
#[cfg(feature = "sql")]
pub use backend::Engine;
#[cfg(feature = "sql")]
mod batch;
pub mod cache;
pub use codec::{FieldKey, FieldValue, PackedProfile};
mod codec;
#[cfg(feature = "fuzzing")]
pub use codec::fuzzing;
pub mod dump;
#[cfg(feature = "sql")]
pub mod postgres;
#[cfg(feature = "sql")]
mod read;
mod scan;
pub use scan::MAX_SCAN;
mod error;
#[cfg(feature = "sql")]
pub mod sharded;
#[cfg(feature = "sql")]
pub mod sqlite;
pub mod striped;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod timed;
mod url;

pub use error::StoreError;

#[cfg(feature = "sql")]
pub(crate) use url::migrate_error;
#[cfg(feature = "sql")]
pub use url::open;
pub use url::redact_url;

/// An app's id: its `sdkappid`.
pub type AppId = u64;

/// Result alias of this layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An account to import (`account_import` / `multiaccount_import` / `v4/portrait/profile_import`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The account.
    pub user: Identifier,
    /// Fields written on import, in order (a later item for the same tag wins), also for an
    /// account that exists already. Validated by the caller.
    pub items: Vec<(Tag, ProfileValue)>,
}

impl NewAccount {
    /// An account with no fields written (an existing account is left as it is).
    pub fn new(user: Identifier) -> NewAccount {
        NewAccount {
            user,
            items: Vec::new(),
        }
    }

    /// An account with the vendor import's two fields: `Nick` to `Tag_Profile_IM_Nick` and
    /// `FaceUrl` to `Tag_Profile_IM_Image`, where given.
    pub fn with_nick_face(
        user: Identifier,
        nick: Option<String>,
        face_url: Option<String>,
    ) -> NewAccount {
        use portrait_core::schema::StandardTag;
        let items = [(StandardTag::Nick, nick), (StandardTag::Image, face_url)]
            .into_iter()
            .filter_map(|(tag, v)| Some((Tag::Standard(tag), ProfileValue::Str(v?))))
            .collect();
        NewAccount { user, items }
    }
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// Fields that have been set, keyed by full tag name (`Tag_Profile_IM_Nick`, …).
    pub fields: BTreeMap<String, ProfileValue>,
    /// The app version of the last change to this account.
    pub version: u64,
    /// Unix milliseconds of the last change to this account.
    pub updated_at_ms: i64,
}

/// What kind of change a change-log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Account imported (new) or re-imported with Nick/FaceUrl.
    Import,
    /// Profile fields set.
    Set,
    /// Account deleted.
    Delete,
}

impl ChangeKind {
    /// Stable lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Import => "import",
            ChangeKind::Set => "set",
            ChangeKind::Delete => "delete",
        }
    }

    /// Parses [`ChangeKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "import" => Some(ChangeKind::Import),
            "set" => Some(ChangeKind::Set),
            "delete" => Some(ChangeKind::Delete),
            _ => None,
        }
    }
}

/// Where one app stands, as [`Store::app_heads`] reads it for every app at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppHead {
    /// The app.
    pub app: AppId,
    /// Its latest version ([`Store::current_version`]): above what a reader has read, its change
    /// log has grown.
    pub version: u64,
    /// Its kicks revision: different from what a reader saw when it read the app's kicks, they
    /// may have changed since. It changes in the transaction of every write to the app's kicks
    /// ([`Store::kick`], [`Store::restore_app`]); it is not comparable between stores.
    pub kicks: u64,
}

/// One entry of an app's change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Strictly increasing per app, starting at 1.
    pub version: u64,
    /// Whose profile changed.
    pub user: String,
    /// Who made the change (admin identifier or the user).
    pub operator: String,
    /// The address of the client that made the call, as the server saw it (after a trusted
    /// proxy's `X-Forwarded-For`); empty when unknown (a write made by Portrait itself, or a
    /// change written before this was recorded).
    pub client_ip: String,
    /// Kind of change.
    pub kind: ChangeKind,
    /// The items written, by full tag name, in the order given (empty for deletes).
    pub items: Vec<(String, ProfileValue)>,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// What [`Store::changes_of`] answers: the changes of the accounts asked for, and from which
/// version on that answer is complete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangesOf {
    /// The changes, in version order, at most the limit asked for.
    pub changes: Vec<Change>,
    /// Every change of the accounts asked for with a version above this one is in
    /// [`ChangesOf::changes`], up to the last one answered (or, when fewer than the limit were
    /// answered, up to the log's head as it was read). It is the `since` asked for when nothing
    /// is missing; above it when an account had more than [`MAX_CHAIN_WALK`] changes after
    /// `since`: that account's changes after `since` and at or below `complete_after` were not
    /// walked to and are **not** answered. (Changes that are gone because the log was pruned do
    /// not count here: the [`PRUNED`] cursor says that.)
    pub complete_after: u64,
}

impl ChangesOf {
    /// Whether the answer holds every change after `since` (the `since` it was asked for), up
    /// to its last one: no account's walk stopped at [`MAX_CHAIN_WALK`] before reaching `since`.
    pub fn is_complete(&self, since: u64) -> bool {
        self.complete_after <= since
    }
}

/// Most changes of one account a [`Store::changes_of`] call walks back through, from the
/// account's newest (one primary-key lookup each): the work bound of such a call, per account.
/// An account with more changes than this after `since` is answered from its newest this many
/// only, and the answer says so ([`ChangesOf::complete_after`]).
pub const MAX_CHAIN_WALK: usize = 10_000;

/// Who made a write and from where: recorded with every change the write makes
/// ([`Change::operator`], [`Change::client_ip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin<'a> {
    /// The admin identifier or the user making the call.
    pub operator: &'a str,
    /// The caller's IP address (empty when unknown).
    pub client_ip: &'a str,
}

impl<'a> Origin<'a> {
    /// A write by `operator` from `client_ip`.
    pub fn new(operator: &'a str, client_ip: &'a str) -> Self {
        Self {
            operator,
            client_ip,
        }
    }
}

/// A write by `operator` from an unknown address (Portrait itself, tools, tests).
impl<'a> From<&'a str> for Origin<'a> {
    fn from(operator: &'a str) -> Self {
        Self::new(operator, "")
    }
}

/// A write by `operator` from an unknown address.
impl<'a> From<&'a String> for Origin<'a> {
    fn from(operator: &'a String) -> Self {
        Self::new(operator, "")
    }
}

/// One account as stored, with what only the store sees (for moving data between stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The account's UserID.
    pub user: String,
    /// Its fields, version and time of last change.
    pub profile: Profile,
}

/// Everything a store holds for one app, read from one snapshot ([`Store::dump_app`]) and written
/// back as is by [`Store::restore_app`]: the way data moves between stores (e.g. from the
/// embedded SQLite store to PostgreSQL) with every version preserved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppDump {
    /// The app.
    pub app: AppId,
    /// The app's latest version ([`Store::current_version`]).
    pub version: u64,
    /// Every account, by UserID (bytewise).
    pub accounts: Vec<StoredAccount>,
    /// The whole change log, by version.
    pub changes: Vec<Change>,
    /// Every named cursor ([`Store::cursor`]), by name.
    pub cursors: Vec<(String, u64)>,
    /// Every kick ([`Store::kicks`]) by UserID, those of deleted accounts included.
    pub kicks: Vec<(String, u64)>,
}

impl AppDump {
    /// Whether the dump holds nothing at all (an app never written).
    pub fn is_empty(&self) -> bool {
        self.version == 0
            && self.accounts.is_empty()
            && self.changes.is_empty()
            && self.cursors.is_empty()
            && self.kicks.is_empty()
    }

    /// Checks that the dump could have come from a store: UserIDs valid and distinct, change
    /// versions strictly increasing from at least 1, no account or change newer than the app's
    /// version, cursor names distinct, kicked UserIDs valid and distinct, every version and kick
    /// time representable.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the first inconsistency.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| {
            Err(StoreError::Corrupt(format!(
                "dump of app {}: {what}",
                self.app
            )))
        };
        if i64::try_from(self.version).is_err() {
            return bad(format!("version {} is out of range", self.version));
        }
        let mut users = std::collections::HashSet::with_capacity(self.accounts.len());
        for a in &self.accounts {
            if let Err(e) = Identifier::parse(&a.user) {
                return bad(format!("account {:?}: {e}", a.user));
            }
            if !users.insert(a.user.as_str()) {
                return bad(format!("account {:?} appears twice", a.user));
            }
            if a.profile.version > self.version {
                return bad(format!(
                    "account {:?} is at version {}, after the app's {}",
                    a.user, a.profile.version, self.version
                ));
            }
        }
        let mut last = 0;
        for c in &self.changes {
            if c.version <= last || c.version > self.version {
                return bad(format!(
                    "change {} is out of order (after {last}, app at {})",
                    c.version, self.version
                ));
            }
            if let Err(e) = Identifier::parse(&c.user) {
                return bad(format!("change {}: {e}", c.version));
            }
            last = c.version;
        }
        let mut names = std::collections::HashSet::with_capacity(self.cursors.len());
        for (name, version) in &self.cursors {
            if !names.insert(name.as_str()) {
                return bad(format!("cursor {name:?} appears twice"));
            }
            if i64::try_from(*version).is_err() {
                return bad(format!("cursor {name:?} at {version} is out of range"));
            }
        }
        let mut kicked = std::collections::HashSet::with_capacity(self.kicks.len());
        for (user, not_before) in &self.kicks {
            if let Err(e) = Identifier::parse(user) {
                return bad(format!("kick of {user:?}: {e}"));
            }
            if !kicked.insert(user.as_str()) {
                return bad(format!("kick of {user:?} appears twice"));
            }
            if i64::try_from(*not_before).is_err() {
                return bad(format!("kick of {user:?} at {not_before} is out of range"));
            }
        }
        Ok(())
    }
}

/// The error of [`Store::restore_app`] into an app that already holds data.
pub(crate) fn restore_conflict(app: AppId) -> StoreError {
    StoreError::Conflict {
        what: format!("app {app} already holds data; restore only into an app that holds none"),
    }
}

/// The storage contract. Backends: [`sqlite::SqliteStore`], [`postgres::PgStore`]. Every backend passes the `testkit`
/// conformance suite.
///
/// Every method but one is required, so that a wrapper store (the read cache, the server's
/// waking store) that misses a forward fails to compile instead of answering for itself. The
/// one provided method, [`Store::set_profile`], only calls [`Store::set_profile_expecting`] of
/// the same store, which every store implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Imports accounts, creating those that do not exist and writing their `items`.
    /// Each account that is created or whose fields are written gets one change-log entry
    /// ([`ChangeKind::Import`]). All accounts are written in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] and the like; nothing is written on error.
    async fn import_accounts(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        origin: Origin<'_>,
    ) -> Result<()>;

    /// Deletes accounts and their profile data. Returns, per requested user in order, whether it
    /// existed. Each deleted account gets one [`ChangeKind::Delete`] entry.
    ///
    /// # Errors
    /// Storage failures; nothing is deleted on error.
    async fn delete_accounts(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>>;

    /// Whether each user exists, in request order.
    ///
    /// # Errors
    /// Storage failures.
    async fn accounts_exist(&self, app: AppId, users: &[Identifier]) -> Result<Vec<bool>>;

    /// One page of the app's accounts in ascending UserID order (bytewise): those whose UserID
    /// starts with `prefix` (every character literal: `%` and `_` are not wildcards), after
    /// `after` when given (the last UserID of the previous page, which need not start with
    /// `prefix`), at most `limit` of them (capped at [`MAX_SCAN`]). Deleted accounts are not
    /// listed. A page is one range read of the accounts' primary key, so its cost grows with
    /// `limit`, never with the number of accounts; paging with `after` lists every account that
    /// exists throughout, once.
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Corrupt`] for a stored UserID that is not one.
    async fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>>;

    /// Records that every UserSig of `user` minted at or before `not_before` (Unix seconds) is
    /// revoked (a later kick with an earlier time changes nothing). Returns `false`, recording
    /// nothing, if the account does not exist. A kick outlives the account: deleting the account
    /// and importing it again does not bring its revoked UserSigs back.
    ///
    /// # Errors
    /// Storage failures.
    async fn kick(&self, app: AppId, user: &Identifier, not_before: u64) -> Result<bool>;

    /// Every kick of the app, deleted accounts' included, as `(user, not_before)` by UserID
    /// (loaded at start-up into memory).
    ///
    /// # Errors
    /// Storage failures.
    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>>;

    /// Writes profile items of one account atomically (later items win over earlier ones with the
    /// same tag), bumps the version and appends one [`ChangeKind::Set`] entry. Returns the new
    /// version.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the account does not exist; nothing is written on error.
    async fn set_profile(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
    ) -> Result<u64> {
        self.set_profile_expecting(app, user, items, origin, None)
            .await
    }

    /// [`Store::set_profile`], but only if the account's current version is `expected` (when
    /// given): the compare-and-set that keeps two devices from overwriting each other's changes.
    ///
    /// # Errors
    /// [`StoreError::VersionConflict`] with the current version if it is not `expected`;
    /// [`StoreError::NotFound`] if the account does not exist; nothing is written on error.
    async fn set_profile_expecting(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
        expected: Option<u64>,
    ) -> Result<u64>;

    /// Reads whole profiles, in request order; `None` for accounts that do not exist. Duplicates
    /// in `users` are answered once per occurrence.
    ///
    /// # Errors
    /// Storage failures.
    async fn get_profiles(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Option<Profile>>>;

    /// [`Store::get_profiles`] with the profiles shared instead of copied, in the packed form
    /// the read cache ([`cache::CachedStore`]) holds them in: it answers with its own entries.
    /// A backend makes them from the stored column directly (it is the packed form already);
    /// a wrapper store forwards it, or its reads copy every profile. The read cache loads its
    /// misses through it.
    ///
    /// # Errors
    /// Storage failures.
    async fn get_profiles_shared(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> Result<Vec<Option<PackedProfile>>>;

    /// Change-log entries with `version > since`, in version order, at most `limit`.
    ///
    /// # Errors
    /// Storage failures.
    async fn changes_since(&self, app: AppId, since: u64, limit: usize) -> Result<Vec<Change>>;

    /// The change-log entries of `users` only with `version > since`, in version order, at most
    /// `limit`: a catch-up of a few accounts, read by walking each account's chain of changes
    /// back from its newest (each change links to the account's previous one), whatever the size
    /// of the app's log. Duplicates in `users` count once.
    ///
    /// The work is bounded: the walk of one account stops after [`MAX_CHAIN_WALK`] changes. An
    /// account with more changes than that after `since` is answered from its newest
    /// [`MAX_CHAIN_WALK`] only, and [`ChangesOf::complete_after`] then says up to which version
    /// changes may be missing (a caller that needs them all reads the log in version order,
    /// [`Store::changes_since`]). The walk also stops at a change that is gone (pruned); that is
    /// told by the [`PRUNED`] cursor, not by the answer.
    ///
    /// # Errors
    /// Storage failures.
    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> Result<ChangesOf>;

    /// Every app's [`AppHead`] (its version and kicks revision), by ascending app, in one read
    /// (per database): what a node polls instead of every app's change log and kicks, so that
    /// an idle app costs nothing but its row here. An app missing from the answer has version 0
    /// and kicks revision 0.
    ///
    /// # Errors
    /// Storage failures.
    async fn app_heads(&self) -> Result<Vec<AppHead>>;

    /// The app's latest version (0 if it has never been written).
    ///
    /// # Errors
    /// Storage failures.
    async fn current_version(&self, app: AppId) -> Result<u64>;

    /// A named position in the app's change log (e.g. how far webhooks have been delivered);
    /// `None` if it was never set.
    ///
    /// # Errors
    /// Storage failures.
    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>>;

    /// Stores a named position (see [`Store::cursor`]), durably.
    ///
    /// # Errors
    /// Storage failures.
    async fn set_cursor(&self, app: AppId, name: &str, version: u64) -> Result<()>;

    /// Deletes the oldest change-log entries of `app` with `version <= through`, at most `limit` of
    /// them, in one transaction that also moves the cursor [`PRUNED`] (never backwards) to the
    /// highest version at or below which the log may now have gaps: once nothing at or below
    /// `through` is left, `through` (but not beyond the app's version), else the highest version
    /// deleted. Returns how many entries it deleted;
    /// call it again while that is `limit`. Accounts and versions are untouched.
    ///
    /// # Errors
    /// Storage failures (nothing is deleted).
    async fn prune_changes(&self, app: AppId, through: u64, limit: usize) -> Result<usize>;

    /// Takes or renews the lease `name` of `app` for `holder` for `ttl_ms`; returns whether
    /// `holder` holds it now. Nodes sharing a database use it so that one of them runs a per-app
    /// job (webhook delivery). A store only one process can open always grants. The holder
    /// releases a lease by renewing it for 0 ms (another holder may take it a moment later).
    ///
    /// # Errors
    /// Storage failures.
    async fn lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool>;

    /// Registers `node` as a live member of the cluster for `ttl_ms` (renewing it; 0 leaves at
    /// once) and returns every member alive now, `node` included, in no particular order.
    /// Members are what a node must hear from before it trusts its read cache without asking
    /// the database (`portrait-server`'s coherence). Expiry is the database's clock, so nodes'
    /// clocks need not agree. A store only one process can open has one member: `node`.
    ///
    /// # Errors
    /// Storage failures.
    async fn members(&self, node: &str, ttl_ms: u64) -> Result<Vec<String>>;

    /// Every app the store holds anything for (a version or a cursor), ascending.
    ///
    /// `apps`, `dump_app` and `restore_app` move data between stores ([`dump`]). Every backend
    /// implements them and every wrapper forwards them.
    ///
    /// # Errors
    /// Storage failures.
    async fn apps(&self) -> Result<Vec<AppId>>;

    /// Everything stored for `app`, read from one consistent snapshot (an empty dump for an app
    /// never written).
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Corrupt`] for undecodable rows.
    async fn dump_app(&self, app: AppId) -> Result<AppDump>;

    /// Writes `dump` into app `dump.app` exactly as it is (versions, times, operators and kicks
    /// preserved; writes after it continue from `dump.version`), in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the store already holds anything for the app;
    /// [`StoreError::Corrupt`] if the dump is inconsistent ([`AppDump::check`]); storage
    /// failures. Nothing is written on error.
    async fn restore_app(&self, dump: AppDump) -> Result<()>;

    /// The app records ([`apps`]) with a revision above `after_revision`, by ascending
    /// revision: a node that has applied every record up to revision r reads what changed since
    /// with `after_revision = r`.
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Corrupt`] for undecodable rows.
    async fn app_records(&self, after_revision: u64) -> Result<Vec<AppRecord>>;

    /// Writes the record of app `sdkappid` (its settings as JSON text, not interpreted) if its
    /// current revision is `expected` (`None`: the app must have no record yet), and returns its
    /// new revision: higher than every revision of every app before it. Revisions become visible
    /// in order.
    ///
    /// # Errors
    /// [`StoreError::VersionConflict`] with the current revision (0 when there is none) if the
    /// expectation does not hold (nothing is written); storage failures.
    async fn put_app_record(
        &self,
        sdkappid: AppId,
        expected: Option<u64>,
        body: &str,
    ) -> Result<u64>;

    /// Cheap liveness check of the backend (for health endpoints).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn ping(&self) -> Result<()>;

    /// Flushes and closes connections; further calls fail.
    async fn close(&self);
}

/// The cursor ([`Store::cursor`]) that says how far an app's change log has been pruned
/// ([`Store::prune_changes`]): changes with a version at or below it may be gone, so a catch-up
/// from before it cannot be complete.
pub const PRUNED: &str = "pruned";

/// Current Unix time in milliseconds (the store stamps changes with it; the server uses the same
/// clock for its own ages and deadlines).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
