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
//! (rounded up to a power of two). An eraser sweeps it: each new bit moves the eraser on by
//! words / entries of a word (one word every 8 to 16 new bits), and each word it reaches is
//! cleared, so that the whole filter is swept once per a cache's worth of new bits. "Recently"
//! therefore means "among the last misses of about a cache's worth of distinct keys" (a bit lives
//! until the eraser comes round to its word: less than one sweep), at most one bit in eight is
//! set (a key never seen is taken for a recent one with a chance of at most 1 in 8, which only
//! lets it in), and no caller ever clears the whole filter at once: before, the miss that ended
//! a window cleared 2 MB on a request's thread (for a cache of 1.2M entries), a latency spike.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits per cache entry.
const BITS_PER_ENTRY: usize = 8;

/// Which keys missed recently. See the module docs.
pub(super) struct Doorkeeper {
    words: Box<[AtomicU64]>,
    /// Bit index mask (the number of bits is a power of two).
    mask: u64,
    /// New bits set so far: where the eraser is.
    set: AtomicU64,
    /// Words the eraser passes per new bit, in 32.32 fixed point: `words / entries` (at most 1:
    /// there are never more words than entries).
    step: u64,
}

impl Doorkeeper {
    /// A doorkeeper for a cache of `entries` entries.
    pub(super) fn new(entries: usize) -> Doorkeeper {
        let entries = entries.max(1);
        let bits = (entries * BITS_PER_ENTRY).next_power_of_two().max(64);
        let words = bits / 64;
        Doorkeeper {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            mask: bits as u64 - 1,
            set: AtomicU64::new(0),
            step: ((words as u64) << 32) / entries as u64,
        }
    }

    /// The bit of the key whose hash is `hash`.
    fn bit(&self, hash: u64) -> u64 {
        // The low bits pick the cache shard; the filter uses the high ones.
        (hash >> 32 ^ hash.rotate_left(17)) & self.mask
    }

    /// Asks for the line [`Doorkeeper::missed_before`] will read for `hash`, so that it arrives
    /// while the caller does other work (the filter, 8 bits per cache entry, is megabytes: a
    /// load of it waits on memory).
    pub(super) fn ask(&self, hash: u64) {
        let word = &self.words[(self.bit(hash) / 64) as usize];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch reads nothing and never faults.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                word.as_ptr().cast(),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = word;
    }

    /// Records a miss of the key whose hash is `hash`; whether it (or a key with the same bit)
    /// had missed recently.
    pub(super) fn missed_before(&self, hash: u64) -> bool {
        let bit = self.bit(hash);
        let word = &self.words[(bit / 64) as usize];
        let flag = 1u64 << (bit % 64);
        if word.load(Ordering::Relaxed) & flag != 0 {
            return true;
        }
        // A new bit: the eraser moves on first (so it never takes this key's bit at once).
        self.erase_step();
        word.fetch_or(flag, Ordering::Relaxed) & flag != 0
    }

    /// Clears the word the eraser reaches with one more new bit, if it reaches one: the whole
    /// filter once per a cache's worth of new bits.
    fn erase_step(&self) {
        let n = self.set.fetch_add(1, Ordering::Relaxed);
        // The eraser's position in words (the integer part; its wrap at 2^32 is a multiple of
        // the number of words, a power of two).
        let at = |n: u64| n.wrapping_mul(self.step) >> 32;
        let (from, to) = (at(n), at(n.wrapping_add(1)));
        if from != to {
            // A bit set meanwhile in this word may be lost: its key is then taken for new.
            let last = self.words.len() as u64 - 1;
            self.words[(from & last) as usize].store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use portrait_core::Identifier;

    use super::*;
    use crate::cache::{with_key, CachedStore, SHARDS};
    use crate::{NewAccount, Store};

    fn hash(i: u64) -> u64 {
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    #[test]
    fn a_key_is_let_in_at_its_second_miss_within_the_window() {
        let d = Doorkeeper::new(1_000);
        let keys = 0..500u64;
        let first = keys.clone().filter(|&i| d.missed_before(hash(i))).count();
        assert!(
            first < 500 / 8,
            "{first} of 500 new keys taken for recent ones"
        );
        // A key that misses again soon after is let in.
        for i in 10_000..10_500u64 {
            d.missed_before(hash(i));
            assert!(d.missed_before(hash(i)), "key {i} at its second miss");
        }
        // 1,100 more distinct keys (more than a window) and the eraser has swept the filter:
        // the first keys are forgotten.
        for i in 500..1_600u64 {
            d.missed_before(hash(i));
        }
        let remembered = keys.filter(|&i| d.missed_before(hash(i))).count();
        assert!(remembered < 500 / 4, "{remembered} of 500 still remembered");
    }

    /// Whether the bit of `hash` is set (no miss recorded).
    fn knows(d: &Doorkeeper, hash: u64) -> bool {
        let bit = d.bit(hash);
        d.words[(bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0
    }

    /// The filter is never emptied at once: at every point of three windows, most of the last
    /// 100 new keys are known. (Emptying it when a window ended forgot them all at once, and
    /// cleared 2 MB on one request's thread for a cache of 1.2M entries.)
    #[test]
    fn the_last_keys_are_known_at_every_point() {
        let d = Doorkeeper::new(1_000);
        let mut worst = 100;
        for i in 0..3_000u64 {
            d.missed_before(hash(i));
            if i >= 100 {
                let known = (i - 100..i).filter(|&k| knows(&d, hash(k))).count();
                worst = worst.min(known);
            }
        }
        assert!(
            worst >= 70,
            "at one point only {worst} of the last 100 keys were known"
        );
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
