//! [`crate::Store::scan_accounts`] on SQLite: one range read of the `accounts` primary key per
//! page (the range and the read are `crate::scan`'s), and the test of its query plan.

/// A page of an app's UserIDs: `?2 <= user_id < ?3`, ascending, at most `?4`.
pub(super) const SCAN_SQL: &str = "select user_id from accounts \
     where app_id = ? and user_id >= ? and user_id < ? order by user_id limit ?";

#[cfg(test)]
mod tests {
    use super::super::tests::plan;
    use super::super::SqliteStore;
    use super::*;
    use crate::Store;

    #[tokio::test]
    async fn a_page_is_one_range_of_the_primary_key_without_a_sort() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        assert_eq!(
            plan(&store, SCAN_SQL, &["1", "a", "b", "100"]).await,
            ["SEARCH accounts USING PRIMARY KEY (app_id=? AND user_id>? AND user_id<?)"],
            "no scan of the app's accounts and no sort"
        );
        store.close().await;
    }
}
