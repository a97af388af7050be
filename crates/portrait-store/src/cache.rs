//! A read cache in front of any [`Store`]: [`CachedStore`].
//!
//! Reads (`get_profiles`, `accounts_exist`) are answered from memory when possible, so a hot
//! read never waits for the database. Absent accounts are cached too. Everything else passes
//! straight through; a restore ([`Store::restore_app`]) drops every cached account of its app.
//!
//! **Correctness on one node.** Every write goes through this wrapper; after the inner store has
//! returned, the keys it touched are invalidated. A read that missed loads from the database and
//! may race with a write of the same key; to never keep a stale value, each key belongs to one of
//! [`SHARDS`] shards with a write epoch. A reader notes the shard's epoch before loading and
//! inserts only if it is unchanged afterwards; it re-checks after inserting and removes its entry
//! if a write slipped in between (a writer bumps the epoch *before* invalidating). So after a write
//! is acknowledged, every later read on this node sees it.
//!
//! **Correctness across nodes** ([`CachedStore::shared`], used when nodes share PostgreSQL).
//! Other nodes' writes do not pass through this wrapper, so before answering a read the cache
//! asks the database for the app's current version (one primary-key lookup). If it moved past
//! the version the cache has caught up to, the accounts changed in between are read from the
//! change log and invalidated (the whole app is dropped if there are more than
//! [`MAX_SYNC_CHANGES`]). A write acknowledged by any node has committed before a read that
//! starts later asks for the version, so that read sees it: read-after-write holds across nodes.
//! An entry is only inserted from a database read made after the invalidation that preceded it
//! (the epoch check above), so it is never older than the version the cache has caught up to.
//!
//! **Without the database round trip** ([`CachedStore::set_coherence`]). A [`Coherence`] hook
//! (the server's, over NATS) carries other nodes' invalidations and vouches, per read, that every
//! write acknowledged before the read began has been invalidated here. The version check then
//! runs once per app per epoch of the hook's trust (after the epoch began, so whatever the hook
//! may have missed before is caught up from the change log), and never while the epoch lasts.
//!
//! **Shape.** [`SHARDS`] `RwLock<HashMap>`s, each holding at most `max_entries / SHARDS` entries;
//! a full shard drops an eighth of its entries (arbitrary ones) before inserting, and once a
//! shard has had to, a loaded profile is cached only at its second miss (the `admission`
//! module). The epoch check must happen under the same lock as the insert, which a plain locked
//! map makes easy to see; it also keeps the store crate free of a cache dependency.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use async_trait::async_trait;
use portrait_core::{Identifier, ProfileValue, Tag};
use smallvec::SmallVec;

use crate::striped::Striped;
use crate::{AppDump, AppId, Change, NewAccount, Origin, PackedProfile, Profile, Result, Store};

mod admission;
mod coherence;

use admission::Doorkeeper;
pub use coherence::Coherence;

/// Number of shards (each with its own lock and write epoch).
pub const SHARDS: usize = 16;

/// Most remote changes a shared cache invalidates one by one; beyond, it drops the app.
pub const MAX_SYNC_CHANGES: usize = 5_000;

/// The hasher of shard selection and shard maps: foldhash, seeded per process (fast on short
/// keys, with some resistance to chosen-key collisions).
type Hasher = foldhash::fast::RandomState;

/// The app's 8 bytes (little-endian), then the user's; looked up as a `&[u8]` built on the stack
/// ([`with_key`]), so a hit allocates nothing. Held inline in the map's slot up to
/// [`INLINE_KEY`] bytes (every valid identifier: at most 32 bytes): comparing a key then reads no
/// other heap object, which with a million entries is a cache miss saved per lookup.
#[derive(Clone)]
enum Key {
    Inline(u8, [u8; INLINE_KEY]),
    Heap(Box<[u8]>),
}

const INLINE_KEY: usize = 46;

impl Key {
    fn new(bytes: &[u8]) -> Key {
        match u8::try_from(bytes.len()) {
            Ok(n) if bytes.len() <= INLINE_KEY => {
                let mut inline = [0u8; INLINE_KEY];
                inline[..bytes.len()].copy_from_slice(bytes);
                Key::Inline(n, inline)
            }
            _ => Key::Heap(bytes.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline(n, bytes) => &bytes[..usize::from(*n)],
            Key::Heap(bytes) => bytes,
        }
    }
}

// Hash and equality are those of the bytes, as `Borrow<[u8]>` requires.
impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}
/// `None` caches "account does not exist". Profiles are held packed (see [`PackedProfile`]).
type Entry = Option<PackedProfile>;

/// The cache's metrics (see [`CachedStore::counters`]).
/// (Striped: every read counts, on every core.)
struct Counters {
    hits: Arc<Striped>,
    misses: Arc<Striped>,
    version_checks: Arc<Striped>,
    not_admitted: Arc<Striped>,
}

/// How far a shared cache has caught up with an app's change log.
#[derive(Debug, Clone, Copy, Default)]
struct Synced {
    /// Every change up to this version has been invalidated.
    version: u64,
    /// The [`Coherence`] epoch the last catch-up ran in (0: none).
    epoch: u64,
}

struct Shard {
    map: RwLock<HashMap<Key, Entry, Hasher>>,
    /// Bumped by every write to a key of this shard, before the key is invalidated.
    epoch: AtomicU64,
    /// The shard has been full (it evicted) since it was last emptied of an app: loaded
    /// profiles go through the [`Doorkeeper`].
    evicting: AtomicBool,
}

/// A [`Store`] with an in-memory read cache. See the module docs for the guarantee.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: Hasher,
    /// Which keys missed recently (admission to full shards).
    doorkeeper: Doorkeeper,
    /// Shared database: per app, the version up to which other writers' changes have been
    /// invalidated (`None` = not shared, no check).
    synced: Option<std::sync::Mutex<HashMap<AppId, Synced>>>,
    /// Shared database: what vouches for the cache between version checks, if anything.
    coherence: OnceLock<Arc<dyn Coherence>>,
    /// `portrait_cache_hits_total`, `portrait_cache_misses_total`,
    /// `portrait_cache_version_checks_total` and `portrait_cache_not_admitted_total`, registered
    /// on the first read (by then a server has installed its metrics recorder; without one they
    /// do nothing).
    counters: OnceLock<Counters>,
}

impl CachedStore {
    /// Wraps `inner` with a cache of at most `max_entries` accounts.
    pub fn new(inner: Arc<dyn Store>, max_entries: usize) -> Self {
        Self {
            inner,
            shards: (0..SHARDS)
                .map(|_| Shard {
                    map: RwLock::new(HashMap::default()),
                    epoch: AtomicU64::new(0),
                    evicting: AtomicBool::new(false),
                })
                .collect(),
            per_shard: max_entries.div_ceil(SHARDS).max(1),
            hasher: Default::default(),
            doorkeeper: Doorkeeper::new(max_entries),
            synced: None,
            coherence: OnceLock::new(),
            counters: OnceLock::new(),
        }
    }

    /// Like [`CachedStore::new`], for a database that other nodes write too: every read first
    /// catches up with their changes (see the module docs).
    pub fn shared(inner: Arc<dyn Store>, max_entries: usize) -> Self {
        Self {
            synced: Some(std::sync::Mutex::new(HashMap::new())),
            ..Self::new(inner, max_entries)
        }
    }

    /// Shared mode: lets `coherence` vouch for the cache, so that reads ask the database only
    /// when it cannot (see the module docs). Set once; later calls are ignored.
    pub fn set_coherence(&self, coherence: Arc<dyn Coherence>) {
        let _ = self.coherence.set(coherence);
    }

    /// After a write, before it is answered: tells the other nodes through the [`Coherence`]
    /// hook, if there is one.
    async fn tell_others(&self, app: AppId, users: Option<&[&str]>) {
        if let Some(coherence) = self.coherence.get() {
            coherence.wrote(app, users).await;
        }
    }

    /// Invalidates `users` of `app` because another node wrote them (told by the
    /// [`Coherence`] hook's transport).
    pub fn invalidate_remote<'a>(&self, app: AppId, users: impl IntoIterator<Item = &'a str>) {
        self.invalidate(app, users);
    }

    /// Invalidates every account of `app` because another node wrote it as a whole.
    pub fn invalidate_remote_app(&self, app: AppId) {
        self.drop_app(app);
    }

    /// Shared mode: makes sure no other writer's acknowledged change to `app` is cached stale,
    /// asking the database only if the [`Coherence`] hook (if any) cannot vouch for the cache.
    async fn catch_up(&self, app: AppId) -> Result<()> {
        let Some(synced) = &self.synced else {
            return Ok(());
        };
        let Some(coherence) = self.coherence.get() else {
            return self.sync(app, None).await;
        };
        let epoch = coherence.fresh().await;
        if epoch.is_some() && synced.lock().expect("sync lock").get(&app).map(|s| s.epoch) == epoch
        {
            return Ok(());
        }
        self.sync(app, epoch).await
    }

    /// Shared mode: invalidates what other writers changed since the last sync of `app`, and
    /// records that it caught up within `epoch` of the [`Coherence`] hook's trust, if any.
    async fn sync(&self, app: AppId, epoch: Option<u64>) -> Result<()> {
        let Some(synced) = &self.synced else {
            return Ok(());
        };
        self.counters().version_checks.increment(1);
        let head = self.inner.current_version(app).await?;
        let seen = synced
            .lock()
            .expect("sync lock")
            .get(&app)
            .map(|s| s.version);
        let Some(mut seen) = seen else {
            // First use of the app: whatever is cached for it was loaded without a sync.
            self.drop_app(app);
            synced.lock().expect("sync lock").insert(
                app,
                Synced {
                    version: head,
                    epoch: epoch.unwrap_or(0),
                },
            );
            return Ok(());
        };
        if head <= seen {
            if head < seen {
                // The database went back (a failover to a replica that had not received
                // everything): versions after `head` will be given to other changes, so start
                // over from it.
                self.drop_app(app);
            }
            let mut map = synced.lock().expect("sync lock");
            let slot = map.entry(app).or_default();
            slot.version = head;
            slot.epoch = epoch.unwrap_or(0);
            return Ok(());
        }
        let mut invalidated = 0;
        while seen < head {
            let page = self.inner.changes_since(app, seen, 1_000).await?;
            let Some(last) = page.last().map(|c| c.version) else {
                break;
            };
            invalidated += page.len();
            if invalidated > MAX_SYNC_CHANGES {
                self.drop_app(app);
                seen = head.max(last);
                break;
            }
            self.invalidate(app, page.iter().map(|c| c.user.as_str()));
            seen = last;
        }
        let mut map = synced.lock().expect("sync lock");
        let slot = map.entry(app).or_default();
        slot.version = slot.version.max(seen);
        slot.epoch = epoch.unwrap_or(0);
        Ok(())
    }

    fn counters(&self) -> &Counters {
        self.counters.get_or_init(|| Counters {
            hits: Striped::new(metrics::counter!("portrait_cache_hits_total")),
            misses: Striped::new(metrics::counter!("portrait_cache_misses_total")),
            version_checks: Striped::new(metrics::counter!("portrait_cache_version_checks_total")),
            not_admitted: Striped::new(metrics::counter!("portrait_cache_not_admitted_total")),
        })
    }

    /// Drops every entry of `app`, after a whole-app write or when what is cached cannot be
    /// trusted (same order as [`CachedStore::invalidate`]: bump each shard's epoch, then drop the
    /// entries). A shard left with room takes every loaded profile again.
    fn drop_app(&self, app: AppId) {
        for shard in self.shards.iter() {
            shard.epoch.fetch_add(1, Ordering::SeqCst);
            let mut map = shard.map.write().expect("cache shard lock");
            map.retain(|k, _| !of_app(k.as_bytes(), app));
            shard
                .evicting
                .store(map.len() >= self.per_shard, Ordering::Relaxed);
        }
    }

    fn hash(&self, app: AppId, user: &str) -> u64 {
        self.hasher.hash_one((app, user))
    }

    fn shard_index(&self, app: AppId, user: &str) -> usize {
        shard_of(self.hash(app, user))
    }

    fn shard(&self, app: AppId, user: &str) -> &Shard {
        &self.shards[self.shard_index(app, user)]
    }

    /// The cached entries of `users`, in order (`None`: not cached). With a million entries
    /// each lookup waits on cache misses (the map's slot, then the profile), so the users are
    /// taken shard by shard: one lock per shard, and the slots of a shard's users are all found
    /// and their profiles touched before any is cloned (a clone is an atomic increment, which
    /// would make each miss wait for the previous one), so the misses overlap.
    fn get_many(&self, app: AppId, users: &[Identifier]) -> Vec<Option<Entry>> {
        let mut order: Vec<(usize, usize)> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (self.shard_index(app, u.as_str()), i))
            .collect();
        order.sort_unstable();
        let mut out: Vec<Option<Entry>> = vec![None; users.len()];
        for run in order.chunk_by(|a, b| a.0 == b.0) {
            let map = self.shards[run[0].0].map.read().expect("cache shard lock");
            let mut found: Vec<(usize, &Entry)> = Vec::with_capacity(run.len());
            for &(_, i) in run {
                if let Some(entry) = with_key(app, users[i].as_str(), |k| map.get(k)) {
                    found.push((i, entry));
                }
            }
            let touched = found.iter().fold(0u8, |acc, (_, e)| {
                acc ^ e.as_ref().map_or(0, PackedProfile::first_byte)
            });
            std::hint::black_box(touched);
            for &(i, entry) in &found {
                out[i] = Some(entry.clone());
            }
        }
        out
    }

    /// Invalidates `users` after a write: bump each shard's epoch, then drop the entries.
    fn invalidate<'a>(&self, app: AppId, users: impl IntoIterator<Item = &'a str>) {
        for user in users {
            let shard = self.shard(app, user);
            shard.epoch.fetch_add(1, Ordering::SeqCst);
            shard
                .map
                .write()
                .expect("cache shard lock")
                .remove(key(app, user).as_bytes());
        }
    }

    /// Inserts `value` for `user` unless a write to its shard happened since `epoch` was read,
    /// or the shard is full and `user` did not miss recently (see the `admission` module).
    /// `hash` is `user`'s ([`CachedStore::hash`]).
    fn insert_if_unchanged(&self, app: AppId, user: &str, hash: u64, epoch: u64, value: Entry) {
        let shard = &self.shards[shard_of(hash)];
        if shard.evicting.load(Ordering::Relaxed) && !self.doorkeeper.missed_before(hash) {
            self.counters().not_admitted.increment(1);
            return;
        }
        let mut map = shard.map.write().expect("cache shard lock");
        // Checked under the shard's lock; a writer bumps the epoch before taking the same lock to
        // invalidate, so either we see its bump here or it removes our entry afterwards.
        if shard.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if map.len() >= self.per_shard {
            let drop: Vec<Key> = map
                .keys()
                .take((self.per_shard / 8).max(1))
                .cloned()
                .collect();
            for k in drop {
                map.remove(&k);
            }
            shard.evicting.store(true, Ordering::Relaxed);
        }
        map.insert(key(app, user), value);
    }

    /// Loads `users` (all cache misses) from the inner store and caches what is safe to cache.
    async fn load(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Entry>> {
        // Each user's hash and its shard's epoch. On a full shard, the doorkeeper's line is
        // asked for now, to arrive while the store reads (it is read after).
        let before: SmallVec<[(u64, u64); 1]> = users
            .iter()
            .map(|u| {
                let hash = self.hash(app, u.as_str());
                let shard = &self.shards[shard_of(hash)];
                if shard.evicting.load(Ordering::Relaxed) {
                    self.doorkeeper.ask(hash);
                }
                (hash, shard.epoch.load(Ordering::SeqCst))
            })
            .collect();
        let loaded = self.inner.get_profiles_shared(app, users).await?;
        let mut out = Vec::with_capacity(users.len());
        for ((user, (hash, epoch)), value) in users.iter().zip(before).zip(loaded) {
            self.insert_if_unchanged(app, user.as_str(), hash, epoch, value.clone());
            out.push(value);
        }
        Ok(out)
    }

    /// Cached or loaded profiles for `users`, in order (shared mode: after catching up).
    async fn lookup(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Entry>> {
        self.catch_up(app).await?;
        let mut out = self.get_many(app, users);
        let missed = out.iter().filter(|e| e.is_none()).count();
        let counters = self.counters();
        if missed < users.len() {
            counters.hits.increment((users.len() - missed) as u64);
        }
        if !users.is_empty() && missed == users.len() {
            // (Every one missed, as most reads of one account at 10M: no copy of the ids.)
            counters.misses.increment(users.len() as u64);
            return self.load(app, users).await;
        }
        let missed_at: Vec<usize> = (0..users.len()).filter(|&i| out[i].is_none()).collect();
        if !missed_at.is_empty() {
            counters.misses.increment(missed_at.len() as u64);
            let misses: Vec<Identifier> = missed_at.iter().map(|&i| users[i].clone()).collect();
            for (i, p) in missed_at.into_iter().zip(self.load(app, &misses).await?) {
                out[i] = Some(p);
            }
        }
        Ok(out.into_iter().map(Option::flatten).collect())
    }
}

/// The shard of the key whose hash is `hash` (its low bits; [`Doorkeeper`] uses the high ones).
fn shard_of(hash: u64) -> usize {
    (hash as usize) % SHARDS
}

/// The [`Key`] of `(app, user)`.
fn key(app: AppId, user: &str) -> Key {
    with_key(app, user, Key::new)
}

/// Calls `f` with the [`Key`] bytes of `(app, user)`, built on the stack for ids of up to 56
/// bytes (every valid identifier).
fn with_key<R>(app: AppId, user: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; 64];
    let n = 8 + user.len();
    if n > buf.len() {
        let mut k = Vec::with_capacity(n);
        k.extend_from_slice(&app.to_le_bytes());
        k.extend_from_slice(user.as_bytes());
        return f(&k);
    }
    buf[..8].copy_from_slice(&app.to_le_bytes());
    buf[8..n].copy_from_slice(user.as_bytes());
    f(&buf[..n])
}

/// Whether `key` belongs to `app`.
fn of_app(key: &[u8], app: AppId) -> bool {
    key.get(..8) == Some(&app.to_le_bytes()[..])
}

#[async_trait]
impl Store for CachedStore {
    async fn import_accounts(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        origin: Origin<'_>,
    ) -> Result<()> {
        let r = self.inner.import_accounts(app, accounts, origin).await;
        self.invalidate(app, accounts.iter().map(|a| a.user.as_str()));
        let users: Vec<&str> = accounts.iter().map(|a| a.user.as_str()).collect();
        self.tell_others(app, Some(&users)).await;
        r
    }

    async fn delete_accounts(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>> {
        let r = self.inner.delete_accounts(app, users, origin).await;
        self.invalidate(app, users.iter().map(Identifier::as_str));
        let users: Vec<&str> = users.iter().map(Identifier::as_str).collect();
        self.tell_others(app, Some(&users)).await;
        r
    }

    async fn accounts_exist(&self, app: AppId, users: &[Identifier]) -> Result<Vec<bool>> {
        Ok(self
            .lookup(app, users)
            .await?
            .iter()
            .map(Option::is_some)
            .collect())
    }

    /// Not cached: a listing is read from the store each time.
    async fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>> {
        self.inner.scan_accounts(app, prefix, after, limit).await
    }

    async fn kick(&self, app: AppId, user: &Identifier, not_before: u64) -> Result<bool> {
        self.inner.kick(app, user, not_before).await
    }

    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>> {
        self.inner.kicks(app).await
    }

    async fn set_profile_expecting(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
        expected: Option<u64>,
    ) -> Result<u64> {
        let r = self
            .inner
            .set_profile_expecting(app, user, items, origin, expected)
            .await;
        self.invalidate(app, [user.as_str()]);
        self.tell_others(app, Some(&[user.as_str()])).await;
        r
    }

    async fn get_profiles(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Option<Profile>>> {
        Ok(self
            .lookup(app, users)
            .await?
            .into_iter()
            .map(|p| p.map(|p| p.to_profile()))
            .collect())
    }

    async fn get_profiles_shared(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> Result<Vec<Option<PackedProfile>>> {
        self.lookup(app, users).await
    }

    async fn changes_since(&self, app: AppId, since: u64, limit: usize) -> Result<Vec<Change>> {
        self.inner.changes_since(app, since, limit).await
    }

    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> Result<crate::ChangesOf> {
        self.inner.changes_of(app, users, since, limit).await
    }

    async fn current_version(&self, app: AppId) -> Result<u64> {
        self.inner.current_version(app).await
    }

    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>> {
        self.inner.cursor(app, name).await
    }

    async fn set_cursor(&self, app: AppId, name: &str, version: u64) -> Result<()> {
        self.inner.set_cursor(app, name, version).await
    }

    async fn prune_changes(&self, app: AppId, through: u64, limit: usize) -> Result<usize> {
        self.inner.prune_changes(app, through, limit).await
    }

    async fn apps(&self) -> Result<Vec<AppId>> {
        self.inner.apps().await
    }

    /// Never cached: it is how a node learns what other nodes wrote.
    async fn app_heads(&self) -> Result<Vec<crate::AppHead>> {
        self.inner.app_heads().await
    }

    async fn app_records(&self, after_revision: u64) -> Result<Vec<crate::AppRecord>> {
        self.inner.app_records(after_revision).await
    }

    async fn put_app_record(&self, app: AppId, expected: Option<u64>, body: &str) -> Result<u64> {
        self.inner.put_app_record(app, expected, body).await
    }

    async fn dump_app(&self, app: AppId) -> Result<AppDump> {
        self.inner.dump_app(app).await
    }

    async fn restore_app(&self, dump: AppDump) -> Result<()> {
        let app = dump.app;
        let r = self.inner.restore_app(dump).await;
        // Every account of the app may have changed (absent ones are cached too).
        self.drop_app(app);
        self.tell_others(app, None).await;
        r
    }

    async fn members(&self, node: &str, ttl_ms: u64) -> Result<Vec<String>> {
        self.inner.members(node, ttl_ms).await
    }

    async fn lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool> {
        self.inner.lease(app, name, holder, ttl_ms).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn close(&self) {
        for shard in self.shards.iter() {
            shard.map.write().expect("cache shard lock").clear();
        }
        self.inner.close().await;
    }
}
