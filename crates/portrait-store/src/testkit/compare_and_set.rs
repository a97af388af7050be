//! Conformance checks of `set_profile_expecting`: the expected version guards against lost
//! updates, exactly one of concurrent writers wins, and chains of them mix with other writes.

use std::sync::Arc;

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue};

use crate::{AppId, NewAccount, Store, StoreError};

use super::{all_changes, custom, fields_of, id, new, std_tag, text, ADMIN, NICK};

pub(super) async fn expected_version_guards_against_lost_updates(store: &dyn Store) {
    const APP: AppId = 1_400_000_301;
    store
        .import_accounts(APP, &[new("cas", Some("v1"), None)], ADMIN.into())
        .await
        .unwrap();
    let v1 = store.get_profiles(APP, &[id("cas")]).await.unwrap()[0]
        .as_ref()
        .unwrap()
        .version;
    let nick = |s: &str| vec![(std_tag(StandardTag::Nick), text(s))];
    let v2 = store
        .set_profile_expecting(APP, &id("cas"), &nick("device 1"), "cas".into(), Some(v1))
        .await
        .expect("the expected version is current");
    assert!(v2 > v1);
    let err = store
        .set_profile_expecting(APP, &id("cas"), &nick("device 2"), "cas".into(), Some(v1))
        .await
        .expect_err("a stale expected version is refused");
    assert!(
        matches!(err, StoreError::VersionConflict { current } if current == v2),
        "expected VersionConflict {{ current: {v2} }}, got {err:?}"
    );
    assert_eq!(fields_of(store, APP, "cas").await[NICK], text("device 1"));
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        v2,
        "a refused write takes no version"
    );
    assert_eq!(
        all_changes(store, APP).await.len(),
        2,
        "and no change entry"
    );
    let err = store
        .set_profile_expecting(APP, &id("nobody"), &nick("x"), "cas".into(), Some(1))
        .await
        .expect_err("missing account");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
    let v3 = store
        .set_profile_expecting(APP, &id("cas"), &nick("device 2"), "cas".into(), Some(v2))
        .await
        .expect("retry with the current version");
    assert_eq!(v3, v2 + 1);
}

pub(super) async fn concurrent_compare_and_set_lets_exactly_one_writer_win(store: Arc<dyn Store>) {
    const APP: AppId = 1_400_000_302;
    store
        .import_accounts(APP, &[new("race", None, None)], ADMIN.into())
        .await
        .unwrap();
    let base = store.current_version(APP).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .set_profile_expecting(
                        APP,
                        &id("race"),
                        &[(std_tag(StandardTag::Nick), text(&format!("w{i}")))],
                        "race".into(),
                        Some(base),
                    )
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::VersionConflict { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(
        won, 1,
        "exactly one of 16 writers expecting the same version wins"
    );
    assert_eq!(store.current_version(APP).await.unwrap(), base + 1);
}

/// Writes that fail (stale expected version, missing account) race with writes that succeed, as
/// they would inside a group commit: the failures take no version and leave nothing, the others
/// all commit with contiguous versions, and a compare-and-set chain (each write expecting the
/// version its previous one returned) never conflicts with itself, however the writes are grouped.
pub(super) async fn compare_and_set_chains_and_failing_writes_mix_with_concurrent_ones(
    store: Arc<dyn Store>,
) {
    const APP: AppId = 1_400_000_306;
    const CHAINS: usize = 4;
    const ROUNDS: u64 = 15;
    let mut accounts: Vec<NewAccount> = (0..CHAINS)
        .map(|k| new(&format!("k{k}"), None, None))
        .collect();
    accounts.extend((0..CHAINS).map(|k| new(&format!("s{k}"), None, None)));
    store
        .import_accounts(APP, &accounts, ADMIN.into())
        .await
        .unwrap();
    let base = store.current_version(APP).await.unwrap();
    let chain_users: Vec<Identifier> = (0..CHAINS).map(|k| id(&format!("k{k}"))).collect();
    let first: Vec<u64> = store
        .get_profiles(APP, &chain_users)
        .await
        .unwrap()
        .iter()
        .map(|p| p.as_ref().expect("imported").version)
        .collect();

    #[derive(Debug)]
    enum Kind {
        Chain,
        Stale,
        Missing,
        Plain,
    }
    let start = Arc::new(tokio::sync::Barrier::new(4 * CHAINS));
    let mut tasks = Vec::new();
    for (k, &chain_start) in first.iter().enumerate() {
        for kind in [Kind::Chain, Kind::Stale, Kind::Missing, Kind::Plain] {
            let (store, start, mut prev) = (store.clone(), start.clone(), chain_start);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                // Per write: (user, result).
                let mut results: Vec<(String, crate::Result<u64>)> = Vec::new();
                for r in 0..ROUNDS {
                    let (user, expected) = match kind {
                        Kind::Chain => (format!("k{k}"), Some(prev)),
                        // No account is ever at version 0 once imported.
                        Kind::Stale => (format!("k{k}"), Some(0)),
                        Kind::Missing => (format!("nobody{k}_{r}"), None),
                        Kind::Plain => (format!("s{k}"), None),
                    };
                    let items = [
                        (
                            std_tag(StandardTag::Nick),
                            text(&format!("{kind:?} {k} {r}")),
                        ),
                        (custom(&format!("R{r}")), ProfileValue::Int(r)),
                    ];
                    let result = store
                        .set_profile_expecting(APP, &id(&user), &items, (&user).into(), expected)
                        .await;
                    if let (Kind::Chain, Ok(v)) = (&kind, &result) {
                        prev = *v;
                    }
                    results.push((user, result));
                }
                (k, kind, results)
            }));
        }
    }

    let mut ok: Vec<(u64, String)> = Vec::new();
    let mut chains: Vec<Vec<u64>> = vec![Vec::new(); CHAINS];
    let mut conflicts: Vec<(usize, u64)> = Vec::new();
    for t in tasks {
        let (k, kind, results) = t.await.expect("task");
        for (r, (user, result)) in results.into_iter().enumerate() {
            match (&kind, result) {
                (Kind::Chain, Ok(v)) => {
                    chains[k].push(v);
                    ok.push((v, user));
                }
                (Kind::Plain, Ok(v)) => ok.push((v, user)),
                (Kind::Stale, Err(StoreError::VersionConflict { current })) => {
                    conflicts.push((k, current))
                }
                (Kind::Missing, Err(StoreError::NotFound)) => {}
                (kind, result) => panic!("{kind:?} write {r} to {user}: unexpected {result:?}"),
            }
        }
    }
    ok.sort();
    let n = ok.len() as u64;
    assert_eq!(
        n,
        2 * CHAINS as u64 * ROUNDS,
        "every chain and plain write commits"
    );
    assert_eq!(
        ok.iter().map(|w| w.0).collect::<Vec<_>>(),
        (base + 1..=base + n).collect::<Vec<_>>(),
        "the successful writes got contiguous versions: failed ones took none"
    );
    assert_eq!(store.current_version(APP).await.unwrap(), base + n);
    let changes = store.changes_since(APP, base, 10_000).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.version, c.user.clone()))
            .collect::<Vec<_>>(),
        ok,
        "one change per successful write, none for the failed ones"
    );
    for (k, chain) in chains.iter().enumerate() {
        assert!(
            chain.windows(2).all(|w| w[0] < w[1]),
            "k{k}: its chain's versions increase: {chain:?}"
        );
        let profile = store
            .get_profiles(APP, &[id(&format!("k{k}"))])
            .await
            .unwrap()[0]
            .clone()
            .expect("k exists");
        assert_eq!(
            profile.version,
            *chain.last().unwrap(),
            "k{k}: at its last write"
        );
        assert_eq!(
            profile.fields[NICK],
            text(&format!("Chain {k} {}", ROUNDS - 1)),
            "k{k}: stale writes left nothing"
        );
    }
    for (k, current) in conflicts {
        assert!(
            current == first[k] || chains[k].contains(&current),
            "k{k}: a conflict reported version {current}, which the account never had"
        );
    }
    for k in 0..CHAINS {
        let fields = fields_of(&*store, APP, &format!("s{k}")).await;
        let rounds = (0..ROUNDS)
            .filter(|r| {
                fields.get(&format!("Tag_Profile_Custom_R{r}")) == Some(&ProfileValue::Int(*r))
            })
            .count() as u64;
        assert_eq!(rounds, ROUNDS, "s{k}: each write kept the ones before it");
    }
    let ghosts: Vec<Identifier> = (0..CHAINS)
        .flat_map(|k| (0..ROUNDS).map(move |r| id(&format!("nobody{k}_{r}"))))
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
}
