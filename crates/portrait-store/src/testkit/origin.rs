//! Conformance check of where a change came from ([`Origin`]): the operator and the caller's
//! address are stored with every change (import, set alone or in a batch, delete) and read back
//! by every read of the log, by a dump and by a restore.

use portrait_core::schema::StandardTag;
use portrait_core::ProfileValue;

use super::{all_changes, id, ids, new, std_tag, ADMIN};
use crate::{AppId, ChangeKind, Origin, Store};

/// Every write records its operator and client IP with each change it makes.
pub(super) async fn every_change_records_its_operator_and_client_ip(store: &dyn Store) {
    const APP: AppId = 1_400_000_043;
    const RESTORED: AppId = 1_400_000_044;
    let level = |n: u64| vec![(std_tag(StandardTag::Level), ProfileValue::Int(n))];
    store
        .import_accounts(
            APP,
            &[
                new("a", Some("A"), None),
                new("b", None, None),
                new("c", None, None),
            ],
            Origin::new(ADMIN, "203.0.113.7"),
        )
        .await
        .unwrap();
    store
        .set_profile(APP, &id("a"), &level(1), Origin::new("a", "2001:db8::1"))
        .await
        .unwrap();
    // Sets queued together (one batch on both backends), each from its own address.
    let (users, items) = (ids(&["a", "b", "c"]), [level(2), level(3), level(4)]);
    let (x, y, z) = tokio::join!(
        store.set_profile(APP, &users[0], &items[0], Origin::new("a", "192.0.2.1")),
        store.set_profile(APP, &users[1], &items[1], Origin::new("b", "192.0.2.2")),
        store.set_profile(APP, &users[2], &items[2], Origin::new("c", "192.0.2.3")),
    );
    for r in [x, y, z] {
        r.unwrap();
    }
    store
        .set_profile(APP, &id("b"), &level(5), "tool".into())
        .await
        .unwrap();
    store
        .delete_accounts(APP, &ids(&["c"]), Origin::new(ADMIN, "198.51.100.2"))
        .await
        .unwrap();

    let log = all_changes(store, APP).await;
    let seen: Vec<(&str, ChangeKind, &str, &str)> = log
        .iter()
        .map(|c| {
            (
                c.user.as_str(),
                c.kind,
                c.operator.as_str(),
                c.client_ip.as_str(),
            )
        })
        .collect();
    let mut batch: Vec<_> = seen[4..7].to_vec();
    batch.sort_unstable_by_key(|c| c.0);
    assert_eq!(
        seen[..4],
        [
            ("a", ChangeKind::Import, ADMIN, "203.0.113.7"),
            ("b", ChangeKind::Import, ADMIN, "203.0.113.7"),
            ("c", ChangeKind::Import, ADMIN, "203.0.113.7"),
            ("a", ChangeKind::Set, "a", "2001:db8::1"),
        ],
        "imports and a set alone"
    );
    assert_eq!(
        batch,
        [
            ("a", ChangeKind::Set, "a", "192.0.2.1"),
            ("b", ChangeKind::Set, "b", "192.0.2.2"),
            ("c", ChangeKind::Set, "c", "192.0.2.3"),
        ],
        "sets written together keep their own addresses"
    );
    assert_eq!(
        seen[7..],
        [
            ("b", ChangeKind::Set, "tool", ""),
            ("c", ChangeKind::Delete, ADMIN, "198.51.100.2"),
        ],
        "an unknown address is empty; deletes record theirs"
    );

    let of_a = store.changes_of(APP, &ids(&["a"]), 0, 10).await.unwrap();
    let ips: Vec<&str> = of_a.changes.iter().map(|c| c.client_ip.as_str()).collect();
    assert_eq!(
        ips,
        ["203.0.113.7", "2001:db8::1", "192.0.2.1"],
        "changes_of"
    );

    let mut dump = store.dump_app(APP).await.unwrap();
    assert_eq!(dump.changes, log, "the dump carries the addresses");
    dump.app = RESTORED;
    store.restore_app(dump).await.unwrap();
    assert_eq!(
        all_changes(store, RESTORED).await,
        log,
        "a restore writes them back"
    );
}
