//! [`crate::Store::scan_accounts`] on PostgreSQL: one range read of the `accounts` primary key
//! per page (the range and the read are `crate::scan`'s), and the test of its query plan.

/// A page of an app's UserIDs: `$2 <= user_id < $3`, ascending, at most `$4` (`user_id` is
/// `collate "C"`, so the range and the order are bytewise, as in SQLite).
pub(super) const SCAN_SQL: &str = "select user_id from accounts \
     where app_id = $1 and user_id >= $2 and user_id < $3 order by user_id limit $4";

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use portrait_core::Identifier;

    use super::super::PgStore;
    use super::*;
    use crate::Store;

    #[tokio::test]
    async fn a_page_is_one_range_of_the_primary_key_without_a_sort() {
        let store = PgStore::open(&crate::testkit::fresh_postgres_url().await)
            .await
            .unwrap();
        // 100 000 accounts in 10 apps, so the planner has a table worth indexing.
        sqlx::raw_sql(
            "insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
             select v % 10, 'u' || v, '', v, 0 from generate_series(1, 100000) as v; \
             analyze accounts",
        )
        .execute(&store.0.pool)
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!("explain {SCAN_SQL}"))
            .bind(1_i64)
            .bind("u1")
            .bind("u2")
            .bind(100_i64)
            .fetch_all(&store.0.pool)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index") && plan.contains("using accounts_pkey on accounts"),
            "a range of the primary key: {plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{plan}");
        assert!(!plan.contains("Sort"), "the index gives the order: {plan}");
        // And it answers, in bytewise order, from the range only.
        let got = store.scan_accounts(1, "u99", None, 3).await.unwrap();
        let got: Vec<&str> = got.iter().map(Identifier::as_str).collect();
        assert_eq!(got, ["u99001", "u9901", "u99011"]);
        store.close().await;
    }
}
