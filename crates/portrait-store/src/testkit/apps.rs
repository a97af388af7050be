//! Conformance of app records ([`Store::app_records`], [`Store::put_app_record`]): creation only
//! when absent, compare-and-set on the revision, global and growing revisions, and exactly one
//! winner among concurrent puts with the same expectation. Tolerates other records in the store
//! (revisions are global): it compares with the revisions it observes.

use std::sync::Arc;

use crate::{Store, StoreError};

const APP_A: u64 = 1_900_000_101;
const APP_B: u64 = 1_900_000_102;
const APP_C: u64 = 1_900_000_103;

fn conflict(r: crate::Result<u64>) -> u64 {
    match r {
        Err(StoreError::VersionConflict { current }) => current,
        other => panic!("expected a version conflict, got {other:?}"),
    }
}

/// Puts create, replace on the expected revision only, and are read back in revision order.
pub async fn app_records_are_created_once_and_replaced_on_the_expected_revision(s: &dyn Store) {
    let before = s.app_records(0).await.expect("app_records");
    let base = before.iter().map(|r| r.revision).max().unwrap_or(0);
    let a1 = s
        .put_app_record(APP_A, None, r#"{"a":1}"#)
        .await
        .expect("create A");
    assert!(a1 > base, "a new revision is above every earlier one");
    assert_eq!(
        conflict(s.put_app_record(APP_A, None, "{}").await),
        a1,
        "creating an existing record conflicts with its revision"
    );
    assert_eq!(
        conflict(s.put_app_record(APP_B, Some(1), "{}").await),
        0,
        "changing a missing record conflicts with 0"
    );
    let b1 = s
        .put_app_record(APP_B, None, r#"{"b":1}"#)
        .await
        .expect("create B");
    assert!(b1 > a1, "revisions are global across apps");
    assert_eq!(
        conflict(s.put_app_record(APP_A, Some(a1 + 100), "{}").await),
        a1
    );
    let a2 = s
        .put_app_record(APP_A, Some(a1), r#"{"a":2}"#)
        .await
        .expect("replace A");
    assert!(a2 > b1);
    let after: Vec<_> = s
        .app_records(base)
        .await
        .expect("app_records")
        .into_iter()
        .filter(|r| [APP_A, APP_B].contains(&r.sdkappid))
        .collect();
    assert_eq!(after.len(), 2, "one record per app: {after:?}");
    assert_eq!((after[0].sdkappid, after[0].revision), (APP_B, b1));
    assert_eq!((after[1].sdkappid, after[1].revision), (APP_A, a2));
    assert_eq!(
        after[1].body, r#"{"a":2}"#,
        "the body is kept as it was given"
    );
    assert!(after[1].updated_ms > 1_600_000_000_000);
    let newer = s.app_records(b1).await.expect("app_records");
    assert!(newer.iter().all(|r| r.revision > b1));
    assert!(newer
        .iter()
        .any(|r| r.sdkappid == APP_A && r.revision == a2));
    assert!(!newer.iter().any(|r| r.sdkappid == APP_B));
}

/// Of concurrent puts with the same expectation, exactly one wins; the others conflict and
/// write nothing.
pub async fn concurrent_app_record_puts_with_one_expectation_let_exactly_one_win(
    store: Arc<dyn Store>,
) {
    for expected in [None, Some(0)] {
        let expected = match expected {
            None => None,
            Some(_) => Some(
                store
                    .app_records(0)
                    .await
                    .expect("app_records")
                    .into_iter()
                    .find(|r| r.sdkappid == APP_C)
                    .expect("created in the first round")
                    .revision,
            ),
        };
        let puts: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put_app_record(APP_C, expected, &format!(r#"{{"writer":{i}}}"#))
                        .await
                })
            })
            .collect();
        let mut won = Vec::new();
        for (i, put) in puts.into_iter().enumerate() {
            match put.await.expect("task") {
                Ok(rev) => won.push((i, rev)),
                Err(StoreError::VersionConflict { .. }) => {}
                Err(e) => panic!("put {i}: {e}"),
            }
        }
        assert_eq!(won.len(), 1, "exactly one put wins ({expected:?}): {won:?}");
        let (writer, rev) = won[0];
        let rec = store
            .app_records(0)
            .await
            .expect("app_records")
            .into_iter()
            .find(|r| r.sdkappid == APP_C)
            .expect("record");
        assert_eq!(rec.revision, rev);
        assert_eq!(rec.body, format!(r#"{{"writer":{writer}}}"#));
    }
}
