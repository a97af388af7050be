//! Conformance checks of concurrent writers: unique versions and no lost changes, and a failing
//! write among concurrent ones fails alone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue};

use crate::{AppId, ChangeKind, NewAccount, Store, StoreError};

use super::{all_changes, custom, fields_of, id, item, new, std_tag, text, ADMIN};

pub(super) async fn concurrent_writes_get_unique_versions_and_lose_no_changes(
    store: Arc<dyn Store>,
) {
    const APP: AppId = 1_400_000_017;
    const USERS: usize = 5;
    const WRITES: u64 = 50;
    let accounts: Vec<NewAccount> = (0..USERS)
        .map(|u| new(&format!("c{u}"), None, None))
        .collect();
    store
        .import_accounts(APP, &accounts, ADMIN.into())
        .await
        .unwrap();
    let base = USERS as u64;

    let mut tasks = Vec::new();
    for i in 0..WRITES {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("c{}", i as usize % USERS);
            let items = [
                (custom("N"), ProfileValue::Int(i)),
                (std_tag(StandardTag::Nick), text(&format!("w{i}"))),
            ];
            let v = store
                .set_profile(APP, &id(&user), &items, (&user).into())
                .await
                .expect("concurrent set_profile");
            // Reads run alongside the writes.
            store
                .get_profiles(APP, &[id(&user)])
                .await
                .expect("concurrent get_profiles");
            (v, i, user)
        }));
    }
    let mut written: Vec<(u64, u64, String)> = Vec::new();
    for t in tasks {
        written.push(t.await.expect("task"));
    }
    written.sort();
    let versions: Vec<u64> = written.iter().map(|w| w.0).collect();
    assert_eq!(
        versions,
        (base + 1..=base + WRITES).collect::<Vec<_>>(),
        "every write gets its own version, no gaps"
    );
    assert_eq!(store.current_version(APP).await.unwrap(), base + WRITES);

    let changes = store.changes_since(APP, base, 1000).await.unwrap();
    assert_eq!(
        changes.len(),
        WRITES as usize,
        "no change-log entry is lost"
    );
    let mut last_by_user: HashMap<&str, u64> = HashMap::new();
    for (c, (v, i, user)) in changes.iter().zip(&written) {
        assert_eq!(
            (c.version, c.user.as_str(), c.kind),
            (*v, user.as_str(), ChangeKind::Set)
        );
        assert_eq!(
            c.items[0],
            item("Tag_Profile_Custom_N", ProfileValue::Int(*i)),
            "version {v} records its own write"
        );
        last_by_user.insert(user, *i);
    }
    for (user, i) in last_by_user {
        assert_eq!(
            fields_of(&*store, APP, user).await["Tag_Profile_Custom_N"],
            ProfileValue::Int(i),
            "{user}: the last version wins"
        );
    }
}

pub(super) async fn concurrent_sets_on_missing_accounts_fail_alone_and_the_others_commit(
    store: Arc<dyn Store>,
) {
    const APP: AppId = 1_400_000_019;
    const USERS: u64 = 7;
    const WRITES: u64 = 150;
    let accounts: Vec<NewAccount> = (0..USERS)
        .map(|u| new(&format!("p{u}"), None, None))
        .collect();
    store
        .import_accounts(APP, &accounts, ADMIN.into())
        .await
        .unwrap();
    let base = USERS;

    // Every third write targets a missing account; all start at once, so that writes to missing
    // and existing accounts (and several to the same account) meet in the same batches.
    let missing = |i: u64| i % 3 == 1;
    let start = Arc::new(tokio::sync::Barrier::new(WRITES as usize));
    let mut tasks = Vec::new();
    for i in 0..WRITES {
        let (store, start) = (store.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let user = if missing(i) {
                format!("missing{i}")
            } else {
                format!("p{}", i % USERS)
            };
            // A field of its own per write (so a lost read-modify-write shows) and a shared one.
            let items = [
                (custom(&format!("W{i}")), ProfileValue::Int(i)),
                (custom("Last"), ProfileValue::Int(i)),
            ];
            start.wait().await;
            let result = store
                .set_profile(APP, &id(&user), &items, (&user).into())
                .await;
            (i, user, result)
        }));
    }
    let mut ok: Vec<(u64, u64, String)> = Vec::new(); // (version, i, user)
    for t in tasks {
        let (i, user, result) = t.await.expect("task");
        match result {
            Ok(v) => {
                assert!(!missing(i), "write {i} to missing {user} answered Ok({v})");
                ok.push((v, i, user));
            }
            Err(StoreError::NotFound) => {
                assert!(missing(i), "write {i} to existing {user} answered NotFound");
            }
            Err(e) => panic!("write {i} to {user}: unexpected error {e:?}"),
        }
    }
    ok.sort();
    let n = ok.len() as u64;
    assert_eq!(n, (0..WRITES).filter(|i| !missing(*i)).count() as u64);
    assert_eq!(
        ok.iter().map(|w| w.0).collect::<Vec<_>>(),
        (base + 1..=base + n).collect::<Vec<_>>(),
        "the successful writes got versions {}..={} with no gaps: failed writes take none",
        base + 1,
        base + n
    );
    assert_eq!(store.current_version(APP).await.unwrap(), base + n);

    let changes = all_changes(store.as_ref(), APP).await;
    assert_eq!(
        changes.iter().map(|c| c.version).collect::<Vec<_>>(),
        (1..=base + n).collect::<Vec<_>>(),
        "the change log is contiguous from 1"
    );
    let sets = &changes[base as usize..];
    assert_eq!(
        sets.len() as u64,
        n,
        "exactly one change per successful set"
    );
    for (c, (v, i, user)) in sets.iter().zip(&ok) {
        assert_eq!(
            (c.version, c.user.as_str(), c.kind, c.operator.as_str()),
            (*v, user.as_str(), ChangeKind::Set, user.as_str())
        );
        assert_eq!(
            c.items,
            vec![
                item(&format!("Tag_Profile_Custom_W{i}"), ProfileValue::Int(*i)),
                item("Tag_Profile_Custom_Last", ProfileValue::Int(*i)),
            ],
            "version {v} records its own write"
        );
    }

    let ghosts: Vec<Identifier> = (0..WRITES)
        .filter(|i| missing(*i))
        .map(|i| id(&format!("missing{i}")))
        .collect();
    assert!(
        store
            .accounts_exist(APP, &ghosts)
            .await
            .unwrap()
            .iter()
            .all(|e| !e),
        "a failed set creates no account"
    );
    for u in 0..USERS {
        let user = format!("p{u}");
        let mine: Vec<&(u64, u64, String)> = ok.iter().filter(|w| w.2 == user).collect();
        let profile = store
            .get_profiles(APP, &[id(&user)])
            .await
            .unwrap()
            .pop()
            .flatten()
            .unwrap_or_else(|| panic!("{user} should exist"));
        let own: BTreeSet<String> = mine
            .iter()
            .map(|w| format!("Tag_Profile_Custom_W{}", w.1))
            .collect();
        let got: BTreeSet<String> = profile
            .fields
            .keys()
            .filter(|k| k.starts_with("Tag_Profile_Custom_W"))
            .cloned()
            .collect();
        assert_eq!(
            got, own,
            "{user}: every write to it is kept (each saw the ones before it)"
        );
        let last = mine.last().expect("every existing account was written");
        assert_eq!(
            profile.fields["Tag_Profile_Custom_Last"],
            ProfileValue::Int(last.1),
            "{user}: the write with the highest version wins"
        );
        assert_eq!(
            profile.version, last.0,
            "{user}: version of its last change"
        );
    }
}
