//! The hook through which a shared read cache ([`super::CachedStore::shared`]) learns of other
//! nodes' writes without asking the database before every read.
//!
//! Without a hook, a shared cache asks the database for the app's version before each read (one
//! primary-key lookup) and invalidates what changed since. With one, it asks only when the hook
//! cannot vouch for the cache: the server's implementation (`portrait_server::coherence`) carries
//! invalidations over NATS and says, per read, whether every write acknowledged anywhere before
//! the read began has reached this node's cache. The cache keeps one number per app, the
//! **epoch** of the hook's trust in which it last caught up from the database: as long as the
//! hook answers with that same epoch, nothing was missed since, and the read is answered from
//! memory.

use async_trait::async_trait;

use crate::AppId;

/// What a shared cache asks of the node around it. See the module docs.
#[async_trait]
pub trait Coherence: Send + Sync + 'static {
    /// Called after this node wrote `users` of `app` (`None`: any account of the app), whether
    /// the write succeeded or not (an error can hide a commit), before the write is answered.
    /// Returns once every node that answers reads from its cache without asking the database
    /// will have invalidated them before any read that starts after this returns.
    async fn wrote(&self, app: AppId, users: Option<&[&str]>);

    /// Called before a read. `Some(epoch)`: every write acknowledged by any node before this
    /// call has been invalidated in this cache, and the hook has vouched for the cache without
    /// a break since `epoch` began (epochs are never 0 and never reused). `None`: it cannot
    /// vouch now, and the cache asks the database.
    async fn fresh(&self) -> Option<u64>;
}
