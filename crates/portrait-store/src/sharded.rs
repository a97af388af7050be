//! [`Sharded`]: a [`Store`] over several PostgreSQL clusters (*shards*), each app on one of them.
//!
//! * The **home** shard ([`HOME`], the `[store] url`) holds what belongs to no app: the app
//!   records and the cluster membership. It also holds every app that has no placement, so a
//!   deployment that adds shards keeps serving its existing apps from where they are.
//! * Every other call names an app and goes to that app's shard, read from the placement map
//!   ([`Sharded::place`], fed by the server from each app's record). Each shard is its own
//!   backend with its own pool, so a call for an app on shard B never waits on shard A: when A's
//!   database is down, A's apps fail fast ([`StoreError::Unavailable`]) and B's are served.
//! * Writes of an app pass through the app's *gate* (a read lock held for the write); a move
//!   ([`Sharded::begin_move`], `sharded/moving.rs`) takes it exclusively for its final catch-up,
//!   so writes wait (they do not fail) while the app switches shards.
//!
//! What must not live here: SQL (each shard is an ordinary backend), or any notion of which
//! shard an app *should* be on (the operator API chooses; [`Sharded::least_loaded`] helps).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use portrait_core::{Identifier, ProfileValue, Tag};

use crate::{
    AppDump, AppHead, AppId, AppRecord, Change, NewAccount, Origin, PackedProfile, Profile, Result,
    Store, StoreError,
};

mod moving;
pub use moving::{Move, MoveReport};

/// How often a shard whose database did not open at start is tried again.
const REOPEN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Longest the start waits for the shards' first tries to open them (a database that accepts
/// connections but stalls): past it, their opening goes on in the background.
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The name of the home shard (the `[store] url`).
pub const HOME: &str = "home";

/// A shard name: 1–32 of `a-z`, `0-9`, `-`, `_`, starting with a letter.
///
/// # Errors
/// [`StoreError::Config`] saying what a name may be.
pub fn check_shard_name(name: &str) -> Result<()> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "shard name {name:?}: use 1 to 32 of a-z, 0-9, '-' and '_', starting with a letter"
        )))
    }
}

/// A shard's store: `None` while its database has not opened yet (a shard that was down when
/// the node started, opened in the background: [`Sharded::open`]).
type Slot = Arc<RwLock<Option<Arc<dyn Store>>>>;

/// Several stores, each app routed to one of them.
pub struct Sharded {
    /// Every shard by name, [`HOME`] included.
    shards: BTreeMap<String, Slot>,
    /// The tasks opening shards that were down at start (stopped by [`Store::close`]).
    opening: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Where each placed app lives; an app not here lives on [`HOME`].
    placement: RwLock<HashMap<AppId, String>>,
    /// Per app, the lock its writes hold shared and a move holds exclusively (made on first use).
    gates: Mutex<HashMap<AppId, Arc<tokio::sync::RwLock<()>>>>,
    /// The gates held shut: by a move on this node, or for a move announced by another node's
    /// app record ([`Sharded::hold`]).
    held: Mutex<HashMap<AppId, tokio::sync::OwnedRwLockWriteGuard<()>>>,
    /// One move at a time on this node.
    moving: tokio::sync::Mutex<()>,
}

/// A store dropped without [`Store::close`] stops opening its shards too.
impl Drop for Sharded {
    fn drop(&mut self) {
        for task in self
            .opening
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            task.abort();
        }
    }
}

impl Sharded {
    /// Routes over `home` and the named `others`.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a bad or repeated name, or one named [`HOME`].
    pub fn new(home: Arc<dyn Store>, others: Vec<(String, Arc<dyn Store>)>) -> Result<Sharded> {
        Sharded::with_slots(
            home,
            others
                .into_iter()
                .map(|(name, store)| (name, Arc::new(RwLock::new(Some(store)))))
                .collect(),
        )
    }

    /// [`Sharded::new`] with the other shards' slots given (some may still be empty).
    fn with_slots(home: Arc<dyn Store>, others: Vec<(String, Slot)>) -> Result<Sharded> {
        let mut shards = BTreeMap::new();
        shards.insert(HOME.to_owned(), Arc::new(RwLock::new(Some(home))));
        for (name, store) in others {
            check_shard_name(&name)?;
            if shards.insert(name.clone(), store).is_some() {
                return Err(StoreError::Config(format!(
                    "shard {name:?} is configured twice (\"{HOME}\" is the name of [store] url)"
                )));
            }
        }
        Ok(Sharded {
            shards,
            opening: Mutex::new(Vec::new()),
            placement: RwLock::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            moving: tokio::sync::Mutex::new(()),
        })
    }

    /// Opens the home shard at `home_url` and every shard of `shards` (name → URL), each a
    /// PostgreSQL database with its own pool.
    ///
    /// Only the home shard must open: a node has to start while another shard's database does
    /// not answer (a restart, a node added during an outage), serving every app but those on
    /// that shard. Such a shard is opened in the background, tried again every
    /// [`REOPEN_EVERY`] until it opens (the start waits at most [`OPEN_WAIT`] for the first
    /// tries); until then its apps fail with [`StoreError::Unavailable`]. A shard that answers but refuses (a wrong password, no
    /// such database, a failing migration) stops the start, as any wrong setting does.
    ///
    /// # Errors
    /// A shard that is not PostgreSQL, a bad name, the home shard's open error, or another
    /// shard's refusal (naming the shard; messages never contain a password).
    #[cfg(feature = "sql")]
    pub async fn open(home_url: &str, shards: &BTreeMap<String, String>) -> Result<Sharded> {
        let pg = |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !pg(home_url) {
            return Err(StoreError::Config(format!(
                "shards need PostgreSQL: [store] url {:?} is not postgres://… (the embedded store has no shards)",
                crate::redact_url(home_url)
            )));
        }
        let home = crate::open(home_url).await?;
        let mut others = Vec::new();
        let mut tasks = Vec::new();
        let mut first_tries = Vec::new();
        for (name, url) in shards {
            check_shard_name(name)?;
            if !pg(url) {
                return Err(StoreError::Config(format!(
                    "shard {name:?}: {:?} is not postgres://…",
                    crate::redact_url(url)
                )));
            }
            // Each shard opens in a task of its own, which goes on trying in the background if
            // the first try fails or outlasts OPEN_WAIT (its migrations are never cut short).
            let slot: Slot = Arc::default();
            let (tell, told) = tokio::sync::oneshot::channel();
            tasks.push(tokio::spawn(open_in_background(
                name.clone(),
                url.clone(),
                slot.clone(),
                tell,
            )));
            first_tries.push((name.clone(), told));
            others.push((name.clone(), slot));
        }
        let sharded = Sharded::with_slots(home, others)?;
        *sharded
            .opening
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = tasks;
        let deadline = tokio::time::Instant::now() + OPEN_WAIT;
        for (name, told) in first_tries {
            match tokio::time::timeout_at(deadline, told).await {
                Ok(Ok(Ok(()))) | Ok(Err(_)) => {}
                Ok(Ok(Err(e))) if is_outage(&e) => {
                    tracing::warn!(shard = %name, error = %e, "a shard's database does not answer; its apps fail until it does (retrying in the background)");
                }
                // A refusal (a wrong password, no such database, a failing migration) is a
                // setting to fix, not an outage to wait out.
                Ok(Ok(Err(e @ StoreError::Config(_)))) => return Err(e),
                Ok(Ok(Err(e))) => return Err(StoreError::Config(format!("shard {name:?}: {e}"))),
                Err(_) => {
                    tracing::warn!(shard = %name, "a shard's database did not open within {OPEN_WAIT:?}; its apps fail until it does (opening goes on in the background)");
                }
            }
        }
        Ok(sharded)
    }

    /// The shard names, [`HOME`] included, in order.
    pub fn names(&self) -> Vec<String> {
        self.shards.keys().cloned().collect()
    }

    /// Whether `name` is a shard here.
    pub fn has(&self, name: &str) -> bool {
        self.shards.contains_key(name)
    }

    /// Places `app` on `shard` (`None`: [`HOME`]) from now on. Data is not moved: this is how a
    /// node learns a placement (an app's record), and the last step of a move.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a shard not configured here (the placement is not changed).
    pub fn place(&self, app: AppId, shard: Option<&str>) -> Result<()> {
        let named = shard;
        let shard = shard.unwrap_or(HOME);
        if !self.has(shard) {
            return Err(StoreError::Config(format!(
                "app {app} is placed on shard {shard:?}, which this node does not have (shards: {})",
                self.names().join(", ")
            )));
        }
        let mut p = self
            .placement
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // A named shard is kept even when it is home: it counts for `least_loaded`.
        match named {
            Some(shard) => p.insert(app, shard.to_owned()),
            None => p.remove(&app),
        };
        Ok(())
    }

    /// The shard `app` lives on.
    pub fn shard_of(&self, app: AppId) -> String {
        let p = self
            .placement
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        p.get(&app).cloned().unwrap_or_else(|| HOME.to_owned())
    }

    /// The shard with the fewest apps placed by name (apps without a `shard` are not counted;
    /// ties go to [`HOME`], then by name), for a new app.
    pub fn least_loaded(&self) -> String {
        let p = self
            .placement
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut load: BTreeMap<&str, usize> = self.shards.keys().map(|k| (k.as_str(), 0)).collect();
        for shard in p.values() {
            *load.entry(shard.as_str()).or_default() += 1;
        }
        load.into_iter()
            .min_by_key(|&(name, n)| (n, name != HOME, name))
            .map_or_else(|| HOME.to_owned(), |(name, _)| name.to_owned())
    }

    /// The store of shard `name`.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a shard not configured here, [`StoreError::Unavailable`] for
    /// one whose database has not opened yet.
    fn shard(&self, name: &str) -> Result<Arc<dyn Store>> {
        let slot = self
            .shards
            .get(name)
            .ok_or_else(|| StoreError::Config(format!("no shard {name:?} on this node")))?;
        opened(name, slot)
    }

    /// The store `app` lives on.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] while that shard's database has not opened yet.
    fn of(&self, app: AppId) -> Result<Arc<dyn Store>> {
        let p = self
            .placement
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let name = p.get(&app).map_or(HOME, String::as_str);
        match self.shards.get(name) {
            Some(slot) => opened(name, slot),
            None => self.home(),
        }
    }

    /// The home shard (always open).
    fn home(&self) -> Result<Arc<dyn Store>> {
        opened(HOME, &self.shards[HOME])
    }

    /// [`Store::app_heads`] of the shards that answer, and the shards that do not, with their
    /// error: a caller that knows which apps are placed on which shard ([`Sharded::shard_of`])
    /// goes on with the apps of the others.
    pub async fn readable_heads(&self) -> (Vec<AppHead>, Vec<(String, StoreError)>) {
        let placement = self
            .placement
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut all = Vec::new();
        let mut failed = Vec::new();
        for name in self.shards.keys() {
            match async { self.shard(name)?.app_heads().await }.await {
                Ok(heads) => all.extend(
                    heads
                        .into_iter()
                        .filter(|h| placement.get(&h.app).map_or(HOME, String::as_str) == name),
                ),
                Err(e) => {
                    tracing::debug!(shard = %name, error = %e, "a shard did not read its apps' heads");
                    failed.push((name.clone(), e));
                }
            }
        }
        all.sort_unstable_by_key(|h| h.app);
        (all, failed)
    }

    /// The gate of `app`'s writes.
    fn gate(&self, app: AppId) -> Arc<tokio::sync::RwLock<()>> {
        let mut g = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        g.entry(app).or_default().clone()
    }

    /// Shuts `app`'s gate: waits for the writes in flight, then makes new ones wait until
    /// [`Sharded::release`]. Holding it already is fine.
    pub async fn hold(&self, app: AppId) {
        if self.is_held(app) {
            return;
        }
        let guard = self.gate(app).write_owned().await;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.entry(app).or_insert(guard);
    }

    /// Opens `app`'s gate: its waiting writes go on (on the shard it is placed on now).
    pub fn release(&self, app: AppId) {
        let guard = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            held.remove(&app)
        };
        drop(guard);
    }

    /// Whether `app`'s writes are held.
    pub fn is_held(&self, app: AppId) -> bool {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.contains_key(&app)
    }

    /// Records on `app`'s shard that `node` holds the app's writes for the move announced at
    /// app-record revision `revision` (a cursor `move-pause:<node>`; written past the gate).
    ///
    /// # Errors
    /// The shard's failure.
    pub async fn ack_pause(&self, app: AppId, node: &str, revision: u64) -> Result<()> {
        self.of(app)?
            .set_cursor(app, &pause_cursor(node), revision)
            .await
    }

    /// The revision of the last move `node` acknowledged holding `app`'s writes for.
    ///
    /// # Errors
    /// The shard's failure.
    pub async fn pause_acked(&self, app: AppId, node: &str) -> Result<Option<u64>> {
        self.of(app)?.cursor(app, &pause_cursor(node)).await
    }

    /// Waits until `app` may be written (no move is switching it), then holds that.
    async fn write_pass(&self, app: AppId) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.gate(app).read_owned().await
    }
}

/// The cursor where `node` acknowledges holding an app's writes for a move.
fn pause_cursor(node: &str) -> String {
    format!("move-pause:{node}")
}

#[async_trait]
impl Store for Sharded {
    async fn import_accounts(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        origin: Origin<'_>,
    ) -> Result<()> {
        let _pass = self.write_pass(app).await;
        self.of(app)?.import_accounts(app, accounts, origin).await
    }

    async fn delete_accounts(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>> {
        let _pass = self.write_pass(app).await;
        self.of(app)?.delete_accounts(app, users, origin).await
    }

    async fn accounts_exist(&self, app: AppId, users: &[Identifier]) -> Result<Vec<bool>> {
        self.of(app)?.accounts_exist(app, users).await
    }

    async fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>> {
        self.of(app)?.scan_accounts(app, prefix, after, limit).await
    }

    async fn kick(&self, app: AppId, user: &Identifier, not_before: u64) -> Result<bool> {
        let _pass = self.write_pass(app).await;
        self.of(app)?.kick(app, user, not_before).await
    }

    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>> {
        self.of(app)?.kicks(app).await
    }

    async fn set_profile_expecting(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
        expected: Option<u64>,
    ) -> Result<u64> {
        let _pass = self.write_pass(app).await;
        self.of(app)?
            .set_profile_expecting(app, user, items, origin, expected)
            .await
    }

    async fn get_profiles(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Option<Profile>>> {
        self.of(app)?.get_profiles(app, users).await
    }

    async fn get_profiles_shared(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> Result<Vec<Option<PackedProfile>>> {
        self.of(app)?.get_profiles_shared(app, users).await
    }

    async fn changes_since(&self, app: AppId, since: u64, limit: usize) -> Result<Vec<Change>> {
        self.of(app)?.changes_since(app, since, limit).await
    }

    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> Result<crate::ChangesOf> {
        self.of(app)?.changes_of(app, users, since, limit).await
    }

    async fn current_version(&self, app: AppId) -> Result<u64> {
        self.of(app)?.current_version(app).await
    }

    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>> {
        self.of(app)?.cursor(app, name).await
    }

    async fn set_cursor(&self, app: AppId, name: &str, version: u64) -> Result<()> {
        let _pass = self.write_pass(app).await;
        self.of(app)?.set_cursor(app, name, version).await
    }

    async fn prune_changes(&self, app: AppId, through: u64, limit: usize) -> Result<usize> {
        // Under the gate: a move reads the change log it is copying.
        let _pass = self.write_pass(app).await;
        self.of(app)?.prune_changes(app, through, limit).await
    }

    async fn lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool> {
        self.of(app)?.lease(app, name, holder, ttl_ms).await
    }

    async fn members(&self, node: &str, ttl_ms: u64) -> Result<Vec<String>> {
        self.home()?.members(node, ttl_ms).await
    }

    /// The apps with data on any shard; a shard that is down is left out (logged), so that one
    /// shard's outage does not hide the others' apps.
    async fn apps(&self) -> Result<Vec<AppId>> {
        let mut all = std::collections::BTreeSet::new();
        let mut failed = None;
        for name in self.shards.keys() {
            match async { self.shard(name)?.apps().await }.await {
                Ok(apps) => all.extend(apps),
                Err(e) => {
                    tracing::warn!(shard = %name, error = %e, "a shard did not list its apps");
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) if all.is_empty() => Err(e),
            _ => Ok(all.into_iter().collect()),
        }
    }

    /// One read per shard; each app's head from the shard it is placed on (a shard may still
    /// hold the rows of an app moved away). A shard that fails fails the whole answer: the
    /// caller cannot tell its apps from apps never written ([`Sharded::readable_heads`] can).
    async fn app_heads(&self) -> Result<Vec<AppHead>> {
        let (heads, mut failed) = self.readable_heads().await;
        match failed.pop() {
            Some((_, e)) => Err(e),
            None => Ok(heads),
        }
    }

    async fn dump_app(&self, app: AppId) -> Result<AppDump> {
        self.of(app)?.dump_app(app).await
    }

    async fn restore_app(&self, dump: AppDump) -> Result<()> {
        let app = dump.app;
        let _pass = self.write_pass(app).await;
        self.of(app)?.restore_app(dump).await
    }

    async fn app_records(&self, after_revision: u64) -> Result<Vec<AppRecord>> {
        self.home()?.app_records(after_revision).await
    }

    async fn put_app_record(
        &self,
        sdkappid: AppId,
        expected: Option<u64>,
        body: &str,
    ) -> Result<u64> {
        self.home()?.put_app_record(sdkappid, expected, body).await
    }

    /// The home shard only: it holds the app records every node needs; one other shard's outage
    /// must not take the node out of a load balancer (its apps fail on their own).
    async fn ping(&self) -> Result<()> {
        self.home()?.ping().await
    }

    async fn close(&self) {
        let tasks =
            std::mem::take(&mut *self.opening.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            task.abort();
            // Once it has ended, a shard it opened meanwhile is in its slot, closed below.
            let _ = task.await;
        }
        for name in self.shards.keys() {
            if let Ok(store) = self.shard(name) {
                store.close().await;
            }
        }
    }
}

/// The store in `slot` of shard `name`, if its database has opened.
fn opened(name: &str, slot: &Slot) -> Result<Arc<dyn Store>> {
    slot.read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .ok_or_else(|| {
            StoreError::Unavailable(
                format!("shard {name:?}: its database has not opened yet").into(),
            )
        })
}

/// Opens shard `name` at `url` (its configuration errors name it).
#[cfg(feature = "sql")]
async fn open_shard(name: &str, url: &str) -> Result<Arc<dyn Store>> {
    // PostgreSQL's opener directly (checked by the caller): `crate::open`'s future, which
    // may open SQLite, is not `Send` for the task of `reopen`. No time limit: the pool's
    // connect gives up by itself when nothing answers, and the migrations of a large shard
    // may take long (cut short, they would roll back and start over at every attempt).
    match crate::postgres::PgStore::open(url).await {
        Ok(store) => Ok(Arc::new(store)),
        Err(StoreError::Config(m)) => Err(StoreError::Config(format!("shard {name:?}: {m}"))),
        Err(e) => Err(e),
    }
}

/// Whether `e`, from opening a shard, says that its database does not answer (waited out in
/// the background) rather than that it refuses.
#[cfg(feature = "sql")]
fn is_outage(e: &StoreError) -> bool {
    let StoreError::Unavailable(inner) = e else {
        return false;
    };
    // A migration that failed on the way (the connection lost) carries the database's error.
    let inner: &(dyn std::error::Error + 'static) = match inner.downcast_ref() {
        Some(
            sqlx::migrate::MigrateError::Execute(e)
            | sqlx::migrate::MigrateError::ExecuteMigration(e, _),
        ) => e,
        _ => inner.as_ref(),
    };
    match inner.downcast_ref::<sqlx::Error>() {
        Some(
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed,
        ) => true,
        // Connection exceptions, "shutting down / starting up", too many connections.
        Some(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
        _ => false,
    }
}

/// Opens shard `name` into `slot`, trying every [`REOPEN_EVERY`] until it opens. The outcome
/// of the first try goes to `first` (whose receiver stops the start on a refusal); later
/// failures are logged.
#[cfg(feature = "sql")]
async fn open_in_background(
    name: String,
    url: String,
    slot: Slot,
    first: tokio::sync::oneshot::Sender<Result<()>>,
) {
    let mut first = Some(first);
    let mut said = None::<std::time::Instant>;
    loop {
        let opened = open_shard(&name, &url).await;
        let failed = match opened {
            Ok(store) => {
                *slot.write().unwrap_or_else(PoisonError::into_inner) = Some(store);
                // Said here unless the start, waiting for it, says so.
                if !matches!(first.take().map(|tell| tell.send(Ok(()))), Some(Ok(()))) {
                    tracing::info!(shard = %name, "the shard's database opened; its apps are served");
                }
                return;
            }
            Err(e) => match first.take() {
                // The start waits for it: it says what failed (and stops on a refusal).
                Some(tell) => match tell.send(Err(e)) {
                    Ok(()) => None,
                    Err(back) => back.err(),
                },
                None => Some(e),
            },
        };
        if let Some(e) = failed {
            // Said at once, then every minute; at every try only in debug.
            if said.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60)) {
                said = Some(std::time::Instant::now());
                if is_outage(&e) {
                    tracing::warn!(shard = %name, error = %e, "the shard's database does not answer; retrying");
                } else {
                    tracing::error!(shard = %name, error = %e, "the shard's database refuses to open; fix it or [store] shards (retrying)");
                }
            } else {
                tracing::debug!(shard = %name, error = %e, "the shard's database does not open yet");
            }
        }
        tokio::time::sleep(REOPEN_EVERY).await;
    }
}
