//! Admission to a full read cache: a profile read once does not push out one read before.
//!
//! While a cache shard has room, every profile loaded from the store is cached. Once it is full
//! (it has had to evict), a loaded profile is cached only if the same key also missed recently:
//! the [`Doorkeeper`] remembers the keys of recent misses. A batch read of a long tail of
//! accounts (a friend list of thousands, an export) then passes through without evicting the
//! accounts that are read again and again; and a read that would only have put one entry in and
//! taken another out saves that work (at 10M accounts, W2 spent about a sixth of the server's
//! CPU inserting and evicting entries it never read again: BENCHMARKS.md, "admission").
//!
//! The price: on a full cache, an account is served from memory from its third read within the
//! window, not its second. Not caching is always safe, so this changes no guarantee of the cache.
//!
//! **The doorkeeper** is a Bloom filter with one hash: a bit per key hash, 8 bits per cache entry
//! (rounded up to a power of two). After as many new bits as the cache holds entries it starts
//! over, so "recently" means "among the last misses of about a cache's worth of distinct keys", and
//! at most one bit in eight is set (a key never seen is taken for a recent one with a chance of
//! at most 1 in 8, which only lets it in).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bits per cache entry.
const BITS_PER_ENTRY: usize = 8;

/// Which keys missed recently. See the module docs.
pub(super) struct Doorkeeper {
    words: Box<[AtomicU64]>,
    /// Bit index mask (the number of bits is a power of two).
    mask: u64,
    /// Bits set since the last start-over.
    set: AtomicUsize,
    /// Bits set after which it starts over.
    window: usize,
}

impl Doorkeeper {
    /// A doorkeeper for a cache of `entries` entries.
    pub(super) fn new(entries: usize) -> Doorkeeper {
        let bits = (entries.max(1) * BITS_PER_ENTRY)
            .next_power_of_two()
            .max(64);
        Doorkeeper {
            words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits as u64 - 1,
            set: AtomicUsize::new(0),
            window: entries.max(1),
        }
    }

    /// Records a miss of the key whose hash is `hash`; whether it (or a key with the same bit)
    /// had missed since the last start-over.
    pub(super) fn missed_before(&self, hash: u64) -> bool {
        // The low bits pick the cache shard; the filter uses the high ones.
        let bit = (hash >> 32 ^ hash.rotate_left(17)) & self.mask;
        let word = &self.words[(bit / 64) as usize];
        let flag = 1u64 << (bit % 64);
        if word.load(Ordering::Relaxed) & flag != 0
            || word.fetch_or(flag, Ordering::Relaxed) & flag != 0
        {
            return true;
        }
        if self.set.fetch_add(1, Ordering::Relaxed) + 1 >= self.window {
            // Start over, remembering this key. Two callers may both start over; either way
            // the filter holds at most a few keys afterwards.
            for w in self.words.iter() {
                w.store(0, Ordering::Relaxed);
            }
            word.fetch_or(flag, Ordering::Relaxed);
            self.set.store(1, Ordering::Relaxed);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use portrait_core::Identifier;

    use super::*;
    use crate::cache::{with_key, CachedStore, SHARDS};
    use crate::{NewAccount, Store};

    #[test]
    fn a_key_is_let_in_at_its_second_miss_within_the_window() {
        let d = Doorkeeper::new(1_000);
        let hashes: Vec<u64> = (0..500u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let first = hashes.iter().filter(|&&h| d.missed_before(h)).count();
        assert!(
            first < 500 / 8,
            "{first} of 500 new keys taken for recent ones"
        );
        assert!(hashes.iter().all(|&h| d.missed_before(h)), "second misses");
        // 1,000 more distinct keys end the window: the first ones are forgotten.
        for i in 500..1_600u64 {
            d.missed_before(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        let remembered = hashes.iter().filter(|&&h| d.missed_before(h)).count();
        assert!(remembered < 500 / 4, "{remembered} of 500 still remembered");
    }

    /// Whether `user` of `app` has an entry in `cache`.
    fn held(cache: &CachedStore, app: u64, user: &str) -> bool {
        let shard = cache.shard(app, user);
        let map = shard.map.read().unwrap();
        with_key(app, user, |k| map.contains_key(k))
    }

    /// Before the cache is full every loaded profile is cached; once a shard has evicted, a
    /// profile is cached at its second miss, and what the cache answers never changes.
    #[tokio::test]
    async fn a_full_cache_takes_a_profile_in_at_its_second_read() {
        const APP: u64 = 1_400_000_078;
        let (inner, _dir) = crate::testkit::fresh_sqlite().await;
        // 2,000 users over 16 shards of 8 entries: every shard gets far more than 8 (the
        // shard of a key depends on the process's hasher seed).
        let users: Vec<Identifier> = (0..2_000)
            .map(|i| Identifier::parse(&format!("u{i}")).unwrap())
            .collect();
        let accounts: Vec<NewAccount> = users.iter().cloned().map(NewAccount::new).collect();
        inner
            .import_accounts(APP, &accounts, "admin".into())
            .await
            .unwrap();
        let cache = CachedStore::new(inner, SHARDS * 8);
        let absent = Identifier::parse("nobody").unwrap();
        let read = |u: &Identifier| {
            let cache = &cache;
            let u = u.clone();
            async move { cache.get_profiles(APP, &[u]).await.unwrap()[0].is_some() }
        };

        // Room: the first read caches.
        assert!(read(&users[0]).await);
        assert!(held(&cache, APP, "u0"));
        // Fill every shard past its 8 entries.
        for u in &users {
            assert!(read(u).await);
        }
        assert!(cache
            .shards
            .iter()
            .all(|s| s.evicting.load(Ordering::Relaxed)));
        // A profile read once more after that (the window has forgotten the reads above, which
        // were more than the cache holds) is not cached at its first miss, then is.
        let mut let_in_at_second = 0;
        for u in &users {
            if held(&cache, APP, u.as_str()) {
                continue;
            }
            assert!(read(u).await);
            if held(&cache, APP, u.as_str()) {
                continue; // its bit was set by another key (at most 1 in 8)
            }
            assert!(read(u).await);
            assert!(held(&cache, APP, u.as_str()), "{u} read twice is cached");
            let_in_at_second += 1;
        }
        assert!(let_in_at_second > 1_000, "{let_in_at_second}");
        // Absent accounts go through the same door, and are still answered as absent.
        assert!(!read(&absent).await);
        assert!(!read(&absent).await);
        assert!(held(&cache, APP, "nobody"));
        // Dropping the app (a restore, or another node's whole-app write) empties the shards:
        // there is room again, and the first read caches.
        cache.invalidate_remote_app(APP);
        assert!(cache
            .shards
            .iter()
            .all(|s| !s.evicting.load(Ordering::Relaxed)));
        assert!(read(&users[7]).await);
        assert!(
            held(&cache, APP, "u7"),
            "cached at its first read after the drop"
        );
    }
}
