//! The conformance suite on the SQLite backend, plus what only a file-backed store can show:
//! persistence across reopen, and opening by URL.

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_store::sqlite::SqliteStore;
use portrait_store::{testkit, ChangeKind, NewAccount, Store, StoreError};

const APP: u64 = 1_400_000_000;

fn id(s: &str) -> Identifier {
    Identifier::parse(s).unwrap()
}

// Multi-threaded, so that the suite's concurrent writers really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let (store, _dir) = testkit::fresh_sqlite().await;
    testkit::run_all(store.clone()).await;
    store.close().await;
}

#[tokio::test]
async fn data_persists_across_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("portrait.db").display());

    let store = SqliteStore::open(&url).await.unwrap();
    let account = NewAccount::with_nick_face(id("alice"), Some("Alice".into()), None);
    store
        .import_accounts(APP, &[account], "admin".into())
        .await
        .unwrap();
    let items = [(Tag::Standard(StandardTag::Level), ProfileValue::Int(9))];
    store
        .set_profile(APP, &id("alice"), &items, "alice".into())
        .await
        .unwrap();
    store.kick(APP, &id("alice"), 1_700_000_000).await.unwrap();
    let before = store.get_profiles(APP, &[id("alice")]).await.unwrap();
    store.close().await;

    let store = SqliteStore::open(&url).await.expect("reopen the same file");
    assert_eq!(
        store.get_profiles(APP, &[id("alice")]).await.unwrap(),
        before
    );
    assert_eq!(store.current_version(APP).await.unwrap(), 2);
    let kinds: Vec<ChangeKind> = store
        .changes_since(APP, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, vec![ChangeKind::Import, ChangeKind::Set]);
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("alice".to_owned(), 1_700_000_000)]
    );

    // Versions continue where they left off.
    assert_eq!(
        store
            .set_profile(APP, &id("alice"), &items, "alice".into())
            .await
            .unwrap(),
        3
    );
    store.close().await;
}

#[tokio::test]
async fn open_creates_missing_parent_directories_and_accepts_both_url_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/portrait.db");
    let store = portrait_store::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("sqlite://PATH");
    store.ping().await.unwrap();
    store.close().await;
    assert!(path.is_file(), "the database file is created");

    let store = portrait_store::open(&format!("sqlite:{}", path.display()))
        .await
        .expect("sqlite:PATH");
    store.ping().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn open_refuses_in_memory_and_unknown_urls() {
    for url in ["sqlite::memory:", "sqlite://", "mysql://localhost/x"] {
        let err = portrait_store::open(url)
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} should be refused"));
        assert!(matches!(err, StoreError::Config(_)), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn closed_store_refuses_further_calls() {
    let (store, _dir) = testkit::fresh_sqlite().await;
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    let err = store
        .import_accounts(APP, &[NewAccount::new(id("x"))], "admin".into())
        .await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
}

/// Data directories written before the packed form (profiles and change items as JSON) open and
/// keep working: old rows are read, merged into and listed as before, and rewritten packed.
#[tokio::test]
async fn rows_stored_as_json_by_earlier_versions_still_read_and_update() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portrait.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url).await.unwrap();
    store
        .import_accounts(APP, &[NewAccount::new(id("old"))], "admin".into())
        .await
        .unwrap();
    store.close().await;

    // What an earlier Portrait wrote: JSON with short tags.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        r#"update accounts set profile = '{"Custom_Hobby":"chess","IM_Gender":"Gender_Type_Male","IM_Nick":"Old\u0000"}'"#,
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        r#"update changes set items = '[["IM_Nick","Old\u0000"],["Custom_Hobby","chess"]]'"#,
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let store = SqliteStore::open(&url).await.unwrap();
    let profile = &store.get_profiles(APP, &[id("old")]).await.unwrap()[0];
    let profile = profile.as_ref().expect("the old account is there");
    assert_eq!(
        profile.fields["Tag_Profile_IM_Nick"],
        ProfileValue::Str("Old\0".into())
    );
    assert_eq!(
        profile.fields["Tag_Profile_IM_Gender"],
        ProfileValue::Str("Gender_Type_Male".into())
    );
    let old_change = &store.changes_since(APP, 0, 10).await.unwrap()[0];
    assert_eq!(
        old_change.items,
        [
            (
                "Tag_Profile_IM_Nick".to_owned(),
                ProfileValue::Str("Old\0".into())
            ),
            (
                "Tag_Profile_Custom_Hobby".to_owned(),
                ProfileValue::Str("chess".into())
            ),
        ]
    );
    let items = [(Tag::Standard(StandardTag::Level), ProfileValue::Int(5))];
    store
        .set_profile(APP, &id("old"), &items, "old".into())
        .await
        .unwrap();
    let after = &store.get_profiles(APP, &[id("old")]).await.unwrap()[0];
    let after = after.as_ref().unwrap();
    assert_eq!(after.fields.len(), 4, "{:?}", after.fields);
    assert_eq!(
        after.fields["Tag_Profile_Custom_Hobby"],
        ProfileValue::Str("chess".into())
    );
    assert_eq!(after.fields["Tag_Profile_IM_Level"], ProfileValue::Int(5));
    store.close().await;

    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let stored: String = sqlx::query_scalar("select profile from accounts")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!stored.starts_with('{'), "rewritten packed: {stored:?}");
    assert!(!stored.contains('\0'));
}

/// A database migrated only up to 0002 (kicks in `accounts.kicked_before`) opens with its kicks
/// moved to the `kicks` table: every kick is kept, and it now outlives the account.
#[tokio::test]
async fn kicks_stored_with_the_account_by_earlier_versions_are_kept() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("portrait.db").display());
    // The migrations up to 0002, as an earlier Portrait ran them.
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    let all = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    for f in ["0001_init.sql", "0002_cursors.sql"] {
        std::fs::copy(format!("{all}/{f}"), old.join(f)).unwrap();
    }
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "insert into accounts (app_id, user_id, profile, version, updated_at_ms, kicked_before) \
         values (?1, 'kicked', '{}', 1, 0, 1700000000), (?1, 'calm', '{}', 2, 0, 0)",
    )
    .bind(APP as i64)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("insert into app_versions (app_id, version) values (?1, 2)")
        .bind(APP as i64)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let store = SqliteStore::open(&url)
        .await
        .expect("migrates to the kicks table");
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("kicked".to_owned(), 1_700_000_000)]
    );
    store
        .delete_accounts(APP, &[id("kicked")], "admin".into())
        .await
        .unwrap();
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("kicked".to_owned(), 1_700_000_000)],
        "the migrated kick outlives the account"
    );
    store.close().await;
}

/// A database migrated up to 0004 (changes not yet chained, the index `changes_by_user` in use)
/// opens with every earlier change chained: catch-ups by account read all of them.
#[tokio::test]
async fn changes_written_before_chains_existed_are_chained_on_open() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("portrait.db").display());
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    let all = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    for f in [
        "0001_init.sql",
        "0002_cursors.sql",
        "0003_kicks_and_changes_by_user.sql",
        "0004_change_client_ip.sql",
    ] {
        std::fs::copy(format!("{all}/{f}"), old.join(f)).unwrap();
    }
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(testkit::EARLIER_LOG_SQL)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let store = SqliteStore::open(&url).await.expect("migrates to chains");
    testkit::changes_written_before_chains_are_chained(&store).await;
    store.close().await;
}
