//! Holder names for store leases ([`portrait_store::Store::lease`]), which decide which node runs
//! an app's webhook delivery or change-log retention when nodes share a database. Only the name
//! lives here; taking and renewing a lease is each task's own business.

/// A fresh holder name for a store lease: the process id and a random part, so every task that
/// takes leases (webhook delivery, change-log retention) is told apart from every other, on this
/// node and on others.
pub fn holder() -> String {
    format!("{}-{:016x}", std::process::id(), rand::random::<u64>())
}
