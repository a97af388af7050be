//! The conformance suite every [`Store`] backend must pass, and fresh stores for tests.
//!
//! [`run_all`] runs every check in sequence against one store. Each check uses its own app ids,
//! so the checks do not interfere and the suite can run on a store shared with other tests.
//! Checks panic (via `assert!`) with a message naming what broke.
//!
//! Fresh stores: [`fresh_sqlite`] (a temporary directory), [`fresh_postgres`] (a new schema in the
//! database at `PORTRAIT_TEST_PG_URL`, default [`DEFAULT_TEST_PG_URL`]; if PostgreSQL is down the
//! test fails, saying how to start it), and [`fresh_store_from_env`], which picks the backend from
//! `PORTRAIT_TEST_STORE` (`sqlite`, the default, or `postgres`) for the server's integration tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};

use crate::{AppDump, AppId, Change, ChangeKind, NewAccount, Store, StoreError};

mod catch_up;
pub use catch_up::{changes_written_before_chains_are_chained, EARLIER_APP, EARLIER_LOG_SQL};
mod origin;

/// Env var choosing the backend of [`fresh_store_from_env`].
pub const TEST_STORE_ENV: &str = "PORTRAIT_TEST_STORE";

/// A fresh SQLite store in a new temporary directory; keep the directory alive while the store is
/// in use (dropping it deletes the database).
///
/// # Panics
/// If the temporary directory or the store cannot be created.
pub async fn fresh_sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory for the test store");
    let url = format!("sqlite://{}", dir.path().join("portrait.db").display());
    let store = crate::sqlite::SqliteStore::open(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    (Arc::new(store), dir)
}

/// Env var with the PostgreSQL URL of the tests ([`DEFAULT_TEST_PG_URL`] when unset). The tests
/// create a schema per store in that database (`portrait_test_…`).
pub const TEST_PG_URL_ENV: &str = "PORTRAIT_TEST_PG_URL";

/// The PostgreSQL the tests use unless [`TEST_PG_URL_ENV`] says otherwise.
pub const DEFAULT_TEST_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Prefix of the schemas [`fresh_postgres_url`] creates.
const TEST_SCHEMA_PREFIX: &str = "portrait_test_";

/// Test schemas older than this are dropped by the next test run.
const STALE_TEST_SCHEMA: Duration = Duration::from_secs(24 * 3600);

/// The PostgreSQL URL of the tests: [`TEST_PG_URL_ENV`] or [`DEFAULT_TEST_PG_URL`].
pub fn test_pg_url() -> String {
    std::env::var(TEST_PG_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_PG_URL.to_owned())
}

/// Creates a new, empty schema in the tests' PostgreSQL database ([`test_pg_url`]) and returns a
/// URL whose connections use it (`options=-c search_path=…`), so every test gets a database of its
/// own. Also drops test schemas left over from runs more than a day ago.
///
/// # Panics
/// If PostgreSQL cannot be reached (with a message naming the URL and how to start PostgreSQL or
/// point the tests elsewhere) or the schema cannot be created. Tests never skip silently.
pub async fn fresh_postgres_url() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let url = test_pg_url();
    let shown = crate::redact_url(&url);
    let hint = format!(
        "the PostgreSQL tests need a database they may create schemas in, at {TEST_PG_URL_ENV} \
         (default {DEFAULT_TEST_PG_URL}). Start PostgreSQL (e.g. `pg_ctlcluster 15 main start`, or \
         `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16`) \
         or point {TEST_PG_URL_ENV} at one"
    );
    let options = crate::postgres::PgStore::connect_options(&url)
        .unwrap_or_else(|e| panic!("{TEST_PG_URL_ENV}={shown}: {e}; {hint}"));
    let mut conn = match tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::ConnectOptions::connect(&options),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("PostgreSQL at {shown} is unreachable: {e}\n{hint}"),
        Err(_) => panic!("PostgreSQL at {shown} did not answer within 10 s\n{hint}"),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let schema = format!(
        "{TEST_SCHEMA_PREFIX}{now}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    if NEXT.load(Ordering::Relaxed) == 1 {
        drop_stale_test_schemas(&mut conn, now).await;
    }
    sqlx::query(&format!("create schema {schema}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {shown}: create schema {schema}: {e}\n{hint}"));
    let _ = sqlx::Connection::close(conn).await;
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Drops the `portrait_test_<unix secs>_…` schemas older than [`STALE_TEST_SCHEMA`] (best effort).
async fn drop_stale_test_schemas(conn: &mut sqlx::PgConnection, now: u64) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "select nspname::text from pg_namespace where starts_with(nspname::text, $1)",
    )
    .bind(TEST_SCHEMA_PREFIX)
    .fetch_all(&mut *conn)
    .await
    else {
        return;
    };
    for name in names {
        let created: Option<u64> = name[TEST_SCHEMA_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|s| s.parse().ok());
        if created.is_some_and(|t| t + STALE_TEST_SCHEMA.as_secs() < now) {
            let _ = sqlx::query(&format!("drop schema if exists {name} cascade"))
                .execute(&mut *conn)
                .await;
        }
    }
}

/// A fresh PostgreSQL store in a schema of its own (see [`fresh_postgres_url`]).
///
/// # Panics
/// If PostgreSQL cannot be reached (the message says how to fix that) or the store cannot be
/// opened.
pub async fn fresh_postgres() -> Arc<dyn Store> {
    let url = fresh_postgres_url().await;
    let store = crate::postgres::PgStore::open(&url)
        .await
        .unwrap_or_else(|e| panic!("open the test store at {}: {e}", crate::redact_url(&url)));
    Arc::new(store)
}

/// A fresh store of the backend named by `PORTRAIT_TEST_STORE`: unset or `sqlite` → [`fresh_sqlite`]
/// (the directory is returned); `postgres` → [`fresh_postgres`] (no directory).
///
/// # Panics
/// For any other value, and if the store cannot be created (PostgreSQL unreachable included).
pub async fn fresh_store_from_env() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match std::env::var(TEST_STORE_ENV).as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("" | "sqlite") => {
            let (store, dir) = fresh_sqlite().await;
            (store, Some(dir))
        }
        Ok("postgres") => (fresh_postgres().await, None),
        Ok(other) => panic!(
            "{TEST_STORE_ENV}={other:?}: valid values are `sqlite` (the default) and `postgres`"
        ),
        Err(e) => {
            panic!("{TEST_STORE_ENV}: {e}; valid values are `sqlite` (the default) and `postgres`")
        }
    }
}

/// Runs the whole conformance suite against `store`.
///
/// # Panics
/// On the first check that fails.
pub async fn run_all(store: Arc<dyn Store>) {
    let s = &*store;
    importing_new_accounts_creates_them_with_one_change_each(s).await;
    reimporting_without_nick_or_face_writes_nothing(s).await;
    reimporting_with_nick_or_face_writes_only_those(s).await;
    an_account_listed_twice_in_one_import_gets_one_change(s).await;
    accounts_exist_answers_per_requested_user(s).await;
    set_profile_writes_all_items_and_later_items_win(s).await;
    set_profile_on_missing_account_writes_nothing(s).await;
    get_profiles_answers_in_request_order_with_none_and_duplicates(s).await;
    get_profiles_answers_large_batches(s).await;
    versions_increase_strictly_per_app_and_apps_are_independent(s).await;
    changes_since_honours_since_limit_and_order(s).await;
    catch_up::changes_of_reads_only_the_given_accounts_in_version_order(s).await;
    catch_up::changes_of_follows_an_account_through_delete_reimport_and_pruning(s).await;
    delete_removes_profiles_and_records_one_change_per_account(s).await;
    kick_records_revocation_and_kicks_lists_kicked_accounts(s).await;
    catch_up::a_kick_outlives_delete_and_reimport(s).await;
    origin::every_change_records_its_operator_and_client_ip(s).await;
    apps_are_isolated(s).await;
    concurrent_writes_get_unique_versions_and_lose_no_changes(store.clone()).await;
    concurrent_sets_on_missing_accounts_fail_alone_and_the_others_commit(store.clone()).await;
    unicode_and_long_strings_round_trip(s).await;
    integers_up_to_u64_max_round_trip(s).await;
    expected_version_guards_against_lost_updates(s).await;
    concurrent_compare_and_set_lets_exactly_one_writer_win(store.clone()).await;
    compare_and_set_chains_and_failing_writes_mix_with_concurrent_ones(store.clone()).await;
    cursors_are_per_app_and_name_and_overwrite(s).await;
    pruning_deletes_the_oldest_changes_and_moves_the_pruned_cursor(s).await;
    versions_become_visible_in_version_order(store.clone()).await;
    dump_and_restore_preserve_everything(s).await;
}

// ---- helpers ----------------------------------------------------------------------------------

const ADMIN: &str = "administrator";

fn id(s: &str) -> Identifier {
    Identifier::parse(s).unwrap_or_else(|e| panic!("test identifier {s:?}: {e}"))
}

fn ids(list: &[&str]) -> Vec<Identifier> {
    list.iter().map(|s| id(s)).collect()
}

fn new(user: &str, nick: Option<&str>, face: Option<&str>) -> NewAccount {
    NewAccount::with_nick_face(id(user), nick.map(str::to_owned), face.map(str::to_owned))
}

fn std_tag(t: StandardTag) -> Tag {
    Tag::Standard(t)
}

fn custom(name: &str) -> Tag {
    Tag::Custom(format!("Tag_Profile_Custom_{name}"))
}

fn text(s: &str) -> ProfileValue {
    ProfileValue::Str(s.to_owned())
}

fn item(tag: &str, v: ProfileValue) -> (String, ProfileValue) {
    (tag.to_owned(), v)
}

fn fields(list: &[(&str, ProfileValue)]) -> BTreeMap<String, ProfileValue> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

const NICK: &str = "Tag_Profile_IM_Nick";
const IMAGE: &str = "Tag_Profile_IM_Image";
const GENDER: &str = "Tag_Profile_IM_Gender";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn all_changes(store: &dyn Store, app: AppId) -> Vec<Change> {
    store
        .changes_since(app, 0, usize::MAX)
        .await
        .expect("changes_since")
}

/// The versions in `app`'s change log, in order.
async fn logged_versions(store: &dyn Store, app: AppId) -> Vec<u64> {
    let log = all_changes(store, app).await;
    log.iter().map(|c| c.version).collect()
}

async fn fields_of(store: &dyn Store, app: AppId, user: &str) -> BTreeMap<String, ProfileValue> {
    let mut got = store
        .get_profiles(app, &[id(user)])
        .await
        .expect("get_profiles");
    got.pop()
        .flatten()
        .unwrap_or_else(|| panic!("app {app}: account {user:?} should exist"))
        .fields
}

/// A change without operator and time: `(version, user, kind, items)`.
type Summary<'a> = (u64, &'a str, ChangeKind, Vec<(String, ProfileValue)>);

/// [`Summary`] of each change.
fn summary(changes: &[Change]) -> Vec<Summary<'_>> {
    changes
        .iter()
        .map(|c| (c.version, c.user.as_str(), c.kind, c.items.clone()))
        .collect()
}

// ---- checks -----------------------------------------------------------------------------------

async fn importing_new_accounts_creates_them_with_one_change_each(store: &dyn Store) {
    const APP: AppId = 1_400_000_001;
    let before = now_ms();
    store
        .import_accounts(
            APP,
            &[
                new("alice", Some("Alice"), Some("https://x.test/a.png")),
                new("bob", None, None),
            ],
            ADMIN.into(),
        )
        .await
        .expect("import");

    assert_eq!(
        store.current_version(APP).await.unwrap(),
        2,
        "one version per created account"
    );
    let changes = all_changes(store, APP).await;
    assert_eq!(
        summary(&changes),
        vec![
            (
                1,
                "alice",
                ChangeKind::Import,
                vec![
                    item(NICK, text("Alice")),
                    item(IMAGE, text("https://x.test/a.png"))
                ]
            ),
            (2, "bob", ChangeKind::Import, vec![]),
        ],
    );
    for c in &changes {
        assert_eq!(c.operator, ADMIN, "the operator is recorded");
        assert!(
            c.at_ms >= before - 1000 && c.at_ms <= now_ms() + 1000,
            "change time is Unix ms: {}",
            c.at_ms
        );
    }

    let got = store
        .get_profiles(APP, &ids(&["alice", "bob"]))
        .await
        .unwrap();
    let alice = got[0].as_ref().expect("alice exists");
    assert_eq!(
        alice.fields,
        fields(&[(NICK, text("Alice")), (IMAGE, text("https://x.test/a.png"))])
    );
    assert_eq!(alice.version, 1);
    assert!(alice.updated_at_ms >= before - 1000);
    let bob = got[1].as_ref().expect("bob exists");
    assert!(
        bob.fields.is_empty(),
        "an account imported without nick or face has no fields: {:?}",
        bob.fields
    );
    assert_eq!(bob.version, 2);

    store
        .import_accounts(APP, &[], ADMIN.into())
        .await
        .expect("an empty import is a no-op");
    assert_eq!(store.current_version(APP).await.unwrap(), 2);
}

async fn reimporting_without_nick_or_face_writes_nothing(store: &dyn Store) {
    const APP: AppId = 1_400_000_002;
    store
        .import_accounts(APP, &[new("carol", Some("Carol"), None)], ADMIN.into())
        .await
        .unwrap();
    let v = store
        .set_profile(
            APP,
            &id("carol"),
            &[(std_tag(StandardTag::Gender), text("Gender_Type_Female"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(v, 2);
    let before = store.get_profiles(APP, &[id("carol")]).await.unwrap();

    store
        .import_accounts(APP, &[new("carol", None, None)], "someone-else".into())
        .await
        .expect("re-import");
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        2,
        "no version is taken"
    );
    assert_eq!(
        all_changes(store, APP).await.len(),
        2,
        "no change is recorded"
    );
    assert_eq!(
        store.get_profiles(APP, &[id("carol")]).await.unwrap(),
        before,
        "the profile is untouched"
    );
}

async fn reimporting_with_nick_or_face_writes_only_those(store: &dyn Store) {
    const APP: AppId = 1_400_000_003;
    store
        .import_accounts(
            APP,
            &[new("dave", Some("Dave"), Some("https://x.test/d.png"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(
            APP,
            &id("dave"),
            &[(std_tag(StandardTag::Gender), text("Gender_Type_Male"))],
            ADMIN.into(),
        )
        .await
        .unwrap();

    store
        .import_accounts(APP, &[new("dave", Some("David"), None)], "op2".into())
        .await
        .unwrap();
    assert_eq!(
        fields_of(store, APP, "dave").await,
        fields(&[
            (NICK, text("David")),
            (IMAGE, text("https://x.test/d.png")),
            (GENDER, text("Gender_Type_Male"))
        ]),
        "only the nick changes; other fields stay",
    );
    store
        .import_accounts(
            APP,
            &[new("dave", None, Some("https://x.test/d2.png"))],
            "op3".into(),
        )
        .await
        .unwrap();
    assert_eq!(
        fields_of(store, APP, "dave").await[IMAGE],
        text("https://x.test/d2.png")
    );

    let changes = all_changes(store, APP).await;
    assert_eq!(
        summary(&changes[2..]),
        vec![
            (
                3,
                "dave",
                ChangeKind::Import,
                vec![item(NICK, text("David"))]
            ),
            (
                4,
                "dave",
                ChangeKind::Import,
                vec![item(IMAGE, text("https://x.test/d2.png"))]
            ),
        ],
    );
    assert_eq!(
        (changes[2].operator.as_str(), changes[3].operator.as_str()),
        ("op2", "op3")
    );
    let profile = store
        .get_profiles(APP, &[id("dave")])
        .await
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    assert_eq!(
        profile.version, 4,
        "the account's version is that of its last change"
    );
}

async fn an_account_listed_twice_in_one_import_gets_one_change(store: &dyn Store) {
    const APP: AppId = 1_400_000_004;
    store
        .import_accounts(APP, &[new("old", None, None)], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(
            APP,
            &[
                new("erin", None, None),
                new("old", None, None),
                new("erin", Some("Erin"), None),
                new("old", Some("Old"), None),
                new("old", Some("Older"), None),
            ],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&all_changes(store, APP).await[1..]),
        vec![
            (
                2,
                "erin",
                ChangeKind::Import,
                vec![item(NICK, text("Erin"))]
            ),
            (
                3,
                "old",
                ChangeKind::Import,
                vec![item(NICK, text("Old")), item(NICK, text("Older"))]
            ),
        ],
        "one change per distinct account, items of every occurrence in order",
    );
    assert_eq!(
        fields_of(store, APP, "old").await[NICK],
        text("Older"),
        "the later occurrence wins"
    );
    assert_eq!(fields_of(store, APP, "erin").await[NICK], text("Erin"));
}

async fn accounts_exist_answers_per_requested_user(store: &dyn Store) {
    const APP: AppId = 1_400_000_005;
    store
        .import_accounts(
            APP,
            &[new("a", None, None), new("b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .accounts_exist(APP, &ids(&["b", "zz", "a", "b", "A"]))
            .await
            .unwrap(),
        vec![true, false, true, true, false],
        "request order, duplicates answered each time, ids are case-sensitive",
    );
    assert_eq!(
        store.accounts_exist(APP, &[]).await.unwrap(),
        Vec::<bool>::new()
    );
    assert_eq!(
        store
            .accounts_exist(APP + 1000, &ids(&["a"]))
            .await
            .unwrap(),
        vec![false],
        "other app"
    );
}

async fn set_profile_writes_all_items_and_later_items_win(store: &dyn Store) {
    const APP: AppId = 1_400_000_006;
    store
        .import_accounts(
            APP,
            &[new("frank", Some("Frank"), Some("https://x.test/f.png"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    let items = vec![
        (std_tag(StandardTag::Nick), text("n1")),
        (std_tag(StandardTag::Gender), text("Gender_Type_Male")),
        (custom("Hobby"), text("chess")),
        (std_tag(StandardTag::Nick), text("n2")),
        (std_tag(StandardTag::Level), ProfileValue::Int(7)),
    ];
    let v = store
        .set_profile(APP, &id("frank"), &items, "frank".into())
        .await
        .expect("set_profile");
    assert_eq!(v, 2, "set_profile returns the new version");
    assert_eq!(store.current_version(APP).await.unwrap(), 2);

    let profile = store
        .get_profiles(APP, &[id("frank")])
        .await
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    assert_eq!(
        profile.fields,
        fields(&[
            (NICK, text("n2")),
            (IMAGE, text("https://x.test/f.png")),
            (GENDER, text("Gender_Type_Male")),
            ("Tag_Profile_Custom_Hobby", text("chess")),
            ("Tag_Profile_IM_Level", ProfileValue::Int(7)),
        ]),
    );
    assert_eq!(profile.version, 2);

    let changes = all_changes(store, APP).await;
    let set = changes.last().unwrap();
    assert_eq!(
        (
            set.version,
            set.user.as_str(),
            set.operator.as_str(),
            set.kind
        ),
        (2, "frank", "frank", ChangeKind::Set)
    );
    let expected: Vec<(String, ProfileValue)> = items
        .iter()
        .map(|(t, v)| (t.name().to_owned(), v.clone()))
        .collect();
    assert_eq!(
        set.items, expected,
        "change items are the items as given, in order"
    );

    let v = store
        .set_profile(
            APP,
            &id("frank"),
            &[(custom("Hobby"), text("go"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(v, 3);
    assert_eq!(
        fields_of(store, APP, "frank").await["Tag_Profile_Custom_Hobby"],
        text("go")
    );
    assert_eq!(
        fields_of(store, APP, "frank").await[NICK],
        text("n2"),
        "untouched fields stay"
    );
}

async fn set_profile_on_missing_account_writes_nothing(store: &dyn Store) {
    const APP: AppId = 1_400_000_007;
    store
        .import_accounts(APP, &[new("gina", None, None)], ADMIN.into())
        .await
        .unwrap();
    let err = store
        .set_profile(
            APP,
            &id("ghost"),
            &[(std_tag(StandardTag::Nick), text("Boo"))],
            ADMIN.into(),
        )
        .await
        .expect_err("set_profile on a missing account fails");
    assert!(
        matches!(err, StoreError::NotFound),
        "expected NotFound, got {err:?}"
    );
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        1,
        "no version is taken"
    );
    assert_eq!(
        all_changes(store, APP).await.len(),
        1,
        "no change is recorded"
    );
    assert_eq!(
        store.accounts_exist(APP, &[id("ghost")]).await.unwrap(),
        vec![false],
        "the account is not created"
    );

    let err = store
        .set_profile(
            APP + 1000,
            &id("gina"),
            &[(std_tag(StandardTag::Nick), text("x"))],
            ADMIN.into(),
        )
        .await;
    assert!(
        matches!(err, Err(StoreError::NotFound)),
        "an account of another app is missing too: {err:?}"
    );
}

async fn get_profiles_answers_in_request_order_with_none_and_duplicates(store: &dyn Store) {
    const APP: AppId = 1_400_000_008;
    store
        .import_accounts(
            APP,
            &[new("a", Some("A"), None), new("b", Some("B"), None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    let got = store
        .get_profiles(APP, &ids(&["b", "missing", "a", "b"]))
        .await
        .unwrap();
    let nicks: Vec<Option<&ProfileValue>> = got
        .iter()
        .map(|p| p.as_ref().map(|p| &p.fields[NICK]))
        .collect();
    assert_eq!(
        nicks,
        vec![Some(&text("B")), None, Some(&text("A")), Some(&text("B"))]
    );
    assert_eq!(got[0], got[3], "a duplicate gets the same answer");
    assert!(store.get_profiles(APP, &[]).await.unwrap().is_empty());
}

async fn get_profiles_answers_large_batches(store: &dyn Store) {
    const APP: AppId = 1_400_000_009;
    let accounts: Vec<NewAccount> = (0..700)
        .map(|i| new(&format!("user{i:04}"), Some(&format!("nick {i}")), None))
        .collect();
    store
        .import_accounts(APP, &accounts, ADMIN.into())
        .await
        .expect("import 700 accounts in one call");
    assert_eq!(store.current_version(APP).await.unwrap(), 700);

    // 150 ids (the vendor's batch size is 100) and 900 ids, reversed, with missing ones mixed in.
    for n in [150usize, 900] {
        let wanted: Vec<Identifier> = (0..n).rev().map(|i| id(&format!("user{i:04}"))).collect();
        let got = store.get_profiles(APP, &wanted).await.unwrap();
        assert_eq!(got.len(), n);
        for (user, profile) in wanted.iter().zip(&got) {
            let i: usize = user.as_str()[4..].parse().unwrap();
            match profile {
                Some(p) => {
                    assert!(i < 700, "{user} should be missing");
                    assert_eq!(p.fields[NICK], text(&format!("nick {i}")), "{user}");
                    assert_eq!(p.version, i as u64 + 1);
                }
                None => assert!(i >= 700, "{user} should exist"),
            }
        }
        let exist = store.accounts_exist(APP, &wanted).await.unwrap();
        assert_eq!(exist, got.iter().map(Option::is_some).collect::<Vec<_>>());
    }
}

async fn versions_increase_strictly_per_app_and_apps_are_independent(store: &dyn Store) {
    const X: AppId = 1_400_000_010;
    const Y: AppId = 1_400_000_011;
    assert_eq!(
        store.current_version(X).await.unwrap(),
        0,
        "an app never written is at version 0"
    );
    store
        .import_accounts(X, &[new("u", None, None)], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(Y, &[new("u", None, None)], ADMIN.into())
        .await
        .unwrap();
    let nick = |s: &str| vec![(std_tag(StandardTag::Nick), text(s))];
    assert_eq!(
        store
            .set_profile(X, &id("u"), &nick("x2"), ADMIN.into())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .set_profile(X, &id("u"), &nick("x3"), ADMIN.into())
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .set_profile(Y, &id("u"), &nick("y2"), ADMIN.into())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .delete_accounts(X, &[id("u")], ADMIN.into())
            .await
            .unwrap(),
        vec![true]
    );
    assert_eq!(store.current_version(X).await.unwrap(), 4);
    assert_eq!(store.current_version(Y).await.unwrap(), 2);
    let xs: Vec<u64> = all_changes(store, X)
        .await
        .iter()
        .map(|c| c.version)
        .collect();
    let ys: Vec<u64> = all_changes(store, Y)
        .await
        .iter()
        .map(|c| c.version)
        .collect();
    assert_eq!(xs, vec![1, 2, 3, 4]);
    assert_eq!(ys, vec![1, 2]);
}

async fn changes_since_honours_since_limit_and_order(store: &dyn Store) {
    const APP: AppId = 1_400_000_012;
    store
        .import_accounts(
            APP,
            &[new("a", None, None), new("b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    for i in 0..3u64 {
        store
            .set_profile(
                APP,
                &id("a"),
                &[(std_tag(StandardTag::Level), ProfileValue::Int(i))],
                "a".into(),
            )
            .await
            .unwrap();
    }
    let versions = |cs: Vec<Change>| cs.iter().map(|c| c.version).collect::<Vec<_>>();
    assert_eq!(
        versions(store.changes_since(APP, 0, 10).await.unwrap()),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        versions(store.changes_since(APP, 2, 2).await.unwrap()),
        vec![3, 4],
        "since is exclusive, limit caps"
    );
    assert_eq!(
        versions(store.changes_since(APP, 4, 10).await.unwrap()),
        vec![5]
    );
    assert!(
        store.changes_since(APP, 5, 10).await.unwrap().is_empty(),
        "nothing after the latest version"
    );
    assert!(
        store.changes_since(APP, 0, 0).await.unwrap().is_empty(),
        "limit 0"
    );
    assert!(store
        .changes_since(APP, u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        store
            .changes_since(APP + 1000, 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "an app never written"
    );

    let c = store.changes_since(APP, 3, 1).await.unwrap().pop().unwrap();
    assert_eq!(
        (
            c.version,
            c.user.as_str(),
            c.operator.as_str(),
            c.kind,
            c.items
        ),
        (
            4,
            "a",
            "a",
            ChangeKind::Set,
            vec![item("Tag_Profile_IM_Level", ProfileValue::Int(1))]
        ),
    );
}

async fn delete_removes_profiles_and_records_one_change_per_account(store: &dyn Store) {
    const APP: AppId = 1_400_000_013;
    store
        .import_accounts(
            APP,
            &[
                new("a", Some("A"), None),
                new("b", Some("B"), None),
                new("c", Some("C"), None),
            ],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(APP, &id("a"), &[(custom("Hobby"), text("x"))], ADMIN.into())
        .await
        .unwrap();

    let existed = store
        .delete_accounts(APP, &ids(&["a", "nobody", "a", "c"]), "deleter".into())
        .await
        .unwrap();
    assert_eq!(
        existed,
        vec![true, false, true, true],
        "per requested user: did it exist before the call"
    );
    let changes = all_changes(store, APP).await;
    assert_eq!(
        summary(&changes[4..]),
        vec![
            (5, "a", ChangeKind::Delete, vec![]),
            (6, "c", ChangeKind::Delete, vec![])
        ],
        "one Delete per deleted account, no items",
    );
    assert!(changes[4..].iter().all(|c| c.operator == "deleter"));
    assert_eq!(
        store
            .get_profiles(APP, &ids(&["a", "b", "c"]))
            .await
            .unwrap()
            .iter()
            .map(Option::is_some)
            .collect::<Vec<_>>(),
        vec![false, true, false]
    );
    assert_eq!(
        store
            .accounts_exist(APP, &ids(&["a", "b", "c"]))
            .await
            .unwrap(),
        vec![false, true, false]
    );

    assert_eq!(
        store
            .delete_accounts(APP, &ids(&["a"]), ADMIN.into())
            .await
            .unwrap(),
        vec![false],
        "deleting twice"
    );
    assert_eq!(
        store.delete_accounts(APP, &[], ADMIN.into()).await.unwrap(),
        Vec::<bool>::new()
    );
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        6,
        "deleting nothing takes no version"
    );

    store
        .import_accounts(APP, &[new("a", None, None)], ADMIN.into())
        .await
        .unwrap();
    let again = store
        .get_profiles(APP, &[id("a")])
        .await
        .unwrap()
        .pop()
        .flatten()
        .expect("re-created");
    assert!(
        again.fields.is_empty(),
        "a deleted account's data is gone: {:?}",
        again.fields
    );
    assert_eq!(again.version, 7);
}

async fn kick_records_revocation_and_kicks_lists_kicked_accounts(store: &dyn Store) {
    const APP: AppId = 1_400_000_014;
    store
        .import_accounts(
            APP,
            &[
                new("a", None, None),
                new("b", None, None),
                new("c", None, None),
            ],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert!(
        store.kicks(APP).await.unwrap().is_empty(),
        "nobody is kicked yet"
    );
    assert!(
        !store.kick(APP, &id("ghost"), 100).await.unwrap(),
        "kicking a missing account reports false"
    );
    assert!(store.kick(APP, &id("b"), 1_700_000_000).await.unwrap());
    assert!(store.kick(APP, &id("a"), 100).await.unwrap());
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("a".to_owned(), 100), ("b".to_owned(), 1_700_000_000)]
    );

    assert!(store.kick(APP, &id("a"), 200).await.unwrap());
    assert!(
        store.kick(APP, &id("b"), 5).await.unwrap(),
        "an earlier kick of an existing account still succeeds"
    );
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("a".to_owned(), 200), ("b".to_owned(), 1_700_000_000)],
        "a later kick moves the revocation forward, never back",
    );
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        3,
        "a kick is not a profile change"
    );
    assert!(
        store.kicks(APP + 1000).await.unwrap().is_empty(),
        "other app"
    );

    store
        .delete_accounts(APP, &[id("a")], ADMIN.into())
        .await
        .unwrap();
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("a".to_owned(), 200), ("b".to_owned(), 1_700_000_000)],
        "a deleted account keeps its kick (see catch_up::a_kick_outlives_delete_and_reimport)"
    );
}

async fn apps_are_isolated(store: &dyn Store) {
    const A: AppId = 1_400_000_015;
    const B: AppId = 1_400_000_016;
    store
        .import_accounts(A, &[new("same", Some("in A"), None)], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(
            B,
            &[new("same", Some("in B"), None), new("only-b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(
            A,
            &id("same"),
            &[(custom("Hobby"), text("a"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store.kick(A, &id("same"), 42).await.unwrap();

    assert_eq!(
        fields_of(store, B, "same").await,
        fields(&[(NICK, text("in B"))]),
        "A's writes do not reach B"
    );
    assert_eq!(
        store.accounts_exist(A, &ids(&["only-b"])).await.unwrap(),
        vec![false]
    );
    assert!(store.kicks(B).await.unwrap().is_empty());
    assert!(all_changes(store, B)
        .await
        .iter()
        .all(|c| c.operator == ADMIN && c.kind == ChangeKind::Import));
    assert_eq!(all_changes(store, B).await.len(), 2);

    assert_eq!(
        store
            .delete_accounts(A, &ids(&["same", "only-b"]), ADMIN.into())
            .await
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(
        fields_of(store, B, "same").await[NICK],
        text("in B"),
        "deleting in A leaves B"
    );
    assert_eq!(store.current_version(B).await.unwrap(), 2);
}

async fn concurrent_writes_get_unique_versions_and_lose_no_changes(store: Arc<dyn Store>) {
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

async fn concurrent_sets_on_missing_accounts_fail_alone_and_the_others_commit(
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

async fn unicode_and_long_strings_round_trip(store: &dyn Store) {
    const APP: AppId = 1_400_000_018;
    let long = format!("{}ab", "深".repeat(166)); // 166 × 3 + 2 = 500 bytes
    assert_eq!(long.len(), 500);
    let tricky_user = r#"a 'quoted' "user" %_\"#;
    let values = [
        ("Tag_Profile_IM_Nick", text("张三 🙂 Ünïcödé")),
        ("Tag_Profile_IM_SelfSignature", text(&long)),
        ("Tag_Profile_IM_Location", text("")),
        (
            "Tag_Profile_Custom_Json",
            text(r#"{"a":[1,"\u0000"]} \n ' " \\"#),
        ),
        ("Tag_Profile_Custom_Numeric", text("123")),
        ("Tag_Profile_Custom_Ctrl", text("nul:\0 tab:\t newline:\n")),
    ];
    store
        .import_accounts(APP, &[new(tricky_user, Some("名字"), None)], ADMIN.into())
        .await
        .unwrap();
    let items: Vec<(Tag, ProfileValue)> = values
        .iter()
        .map(|(t, v)| {
            let tag = StandardTag::from_name(t)
                .map_or_else(|| Tag::Custom((*t).to_owned()), Tag::Standard);
            (tag, v.clone())
        })
        .collect();
    store
        .set_profile(APP, &id(tricky_user), &items, "操作员".into())
        .await
        .unwrap();

    let got = fields_of(store, APP, tricky_user).await;
    assert_eq!(
        got,
        fields(&values),
        "strings come back byte for byte; \"123\" stays a string"
    );
    let c = all_changes(store, APP).await.pop().unwrap();
    assert_eq!(c.user, tricky_user);
    assert_eq!(c.operator, "操作员");
    assert_eq!(
        c.items,
        values
            .iter()
            .map(|(t, v)| item(t, v.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all_changes(store, APP).await[0].items,
        vec![item(NICK, text("名字"))]
    );
}

async fn integers_up_to_u64_max_round_trip(store: &dyn Store) {
    const APP: AppId = u64::MAX; // the whole AppId range is usable
    const OTHER: AppId = u64::MAX - 1;
    store
        .import_accounts(APP, &[new("big", None, None)], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(OTHER, &[new("big", None, None)], ADMIN.into())
        .await
        .unwrap();
    let items = [
        (custom("Max"), ProfileValue::Int(u64::MAX)),
        (custom("Zero"), ProfileValue::Int(0)),
        (
            std_tag(StandardTag::Level),
            ProfileValue::Int(u64::from(u32::MAX)),
        ),
        (custom("Above"), ProfileValue::Int(1 << 63)),
    ];
    store
        .set_profile(APP, &id("big"), &items, ADMIN.into())
        .await
        .unwrap();
    let got = fields_of(store, APP, "big").await;
    for (tag, value) in &items {
        assert_eq!(&got[tag.name()], value, "{tag}");
    }
    let c = all_changes(store, APP).await.pop().unwrap();
    assert_eq!(
        c.items,
        items
            .iter()
            .map(|(t, v)| (t.name().to_owned(), v.clone()))
            .collect::<Vec<_>>()
    );
    assert!(
        fields_of(store, OTHER, "big").await.is_empty(),
        "neighbouring app ids stay apart"
    );
    assert_eq!(store.current_version(APP).await.unwrap(), 2);
    assert_eq!(store.current_version(OTHER).await.unwrap(), 1);
}

async fn expected_version_guards_against_lost_updates(store: &dyn Store) {
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

async fn concurrent_compare_and_set_lets_exactly_one_writer_win(store: Arc<dyn Store>) {
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
async fn compare_and_set_chains_and_failing_writes_mix_with_concurrent_ones(store: Arc<dyn Store>) {
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

async fn cursors_are_per_app_and_name_and_overwrite(store: &dyn Store) {
    const APP: AppId = 1_400_000_303;
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), None);
    store.set_cursor(APP, "webhook", 5).await.unwrap();
    store.set_cursor(APP, "other", 9).await.unwrap();
    store.set_cursor(APP + 1, "webhook", 1).await.unwrap();
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), Some(5));
    store.set_cursor(APP, "webhook", 7).await.unwrap();
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), Some(7));
    assert_eq!(store.cursor(APP, "other").await.unwrap(), Some(9));
    assert_eq!(store.cursor(APP + 1, "webhook").await.unwrap(), Some(1));
    store.set_cursor(APP, "webhook", 0).await.unwrap();
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), Some(0));
}

async fn pruning_deletes_the_oldest_changes_and_moves_the_pruned_cursor(store: &dyn Store) {
    const APP: AppId = 1_400_000_308;
    assert_eq!(store.prune_changes(APP, 100, 10).await.unwrap(), 0);
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(0),
        "not beyond the app's version"
    );
    store.set_cursor(APP, crate::PRUNED, 100).await.unwrap();
    let other = APP + 1;
    store
        .import_accounts(
            APP,
            &[new("a", None, None), new("b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap(); // versions 1, 2
    store
        .import_accounts(other, &[new("a", None, None)], ADMIN.into())
        .await
        .unwrap();
    for i in 0..6 {
        store
            .set_profile(
                APP,
                &id("a"),
                &[(std_tag(StandardTag::Nick), text(&format!("n{i}")))],
                "a".into(),
            )
            .await
            .unwrap(); // versions 3..=8
    }
    // Chunks of at most `limit`, oldest first; the cursor says where gaps may be.
    assert_eq!(store.prune_changes(APP, 5, 2).await.unwrap(), 2);
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(100),
        "never backwards"
    );
    assert_eq!(logged_versions(store, APP).await, [3, 4, 5, 6, 7, 8]);
    store.set_cursor(APP, crate::PRUNED, 0).await.unwrap();
    assert_eq!(store.prune_changes(APP, 5, 2).await.unwrap(), 2);
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(4),
        "the highest deleted"
    );
    assert_eq!(store.prune_changes(APP, 5, 2).await.unwrap(), 1);
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(5),
        "done: `through`"
    );
    assert_eq!(logged_versions(store, APP).await, [6, 7, 8]);
    assert_eq!(store.changes_since(APP, 0, 1).await.unwrap()[0].version, 6);
    // Data, versions and other apps are untouched; writes go on from the app's version.
    assert_eq!(store.current_version(APP).await.unwrap(), 8);
    assert_eq!(fields_of(store, APP, "a").await[NICK], text("n5"));
    assert_eq!(all_changes(store, other).await.len(), 1);
    let v = store
        .set_profile(
            APP,
            &id("b"),
            &[(std_tag(StandardTag::Nick), text("b"))],
            "b".into(),
        )
        .await
        .unwrap();
    assert_eq!(v, 9);
    assert_eq!(store.prune_changes(APP, u64::MAX, 1000).await.unwrap(), 4);
    assert!(all_changes(store, APP).await.is_empty());
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(9),
        "through beyond every version: up to the app's version"
    );
    assert_eq!(
        store.prune_changes(APP, 1, 0).await.unwrap(),
        0,
        "limit 0 deletes nothing"
    );
}

/// The ordering realtime push relies on: a reader that sees change version `v` committed must see
/// every lower version of the app too. Many writers (sets, imports and deletes) race while a
/// reader keeps polling `changes_since(seen)`; every poll must continue exactly at `seen + 1`
/// with no hole. A backend that hands out versions before taking the app's write lock (e.g. from
/// a sequence) lets a later version commit first, and this check sees the gap.
async fn versions_become_visible_in_version_order(store: Arc<dyn Store>) {
    const APP: AppId = 1_400_000_304;
    const WRITERS: u64 = 8;
    const WRITES: u64 = 40;
    let accounts: Vec<NewAccount> = (0..WRITERS)
        .map(|w| new(&format!("o{w}"), None, None))
        .collect();
    store
        .import_accounts(APP, &accounts, ADMIN.into())
        .await
        .unwrap();
    let base = WRITERS;

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = 0u64;
            let mut growths = 0u32;
            loop {
                // Read before polling: once the writers are done, one more poll sees the end.
                let finished = done.load(Ordering::SeqCst);
                let got = store
                    .changes_since(APP, seen, 10_000)
                    .await
                    .expect("changes_since while writers write");
                if !got.is_empty() {
                    growths += 1;
                }
                for c in &got {
                    assert_eq!(
                        c.version,
                        seen + 1,
                        "version {} became visible while version {} was not (a gap a reader \
                         could skip for good)",
                        c.version,
                        seen + 1
                    );
                    seen = c.version;
                }
                let current = store.current_version(APP).await.expect("current_version");
                assert!(
                    current >= seen,
                    "current_version {current} is behind the visible change log ({seen})"
                );
                if finished {
                    return (seen, growths);
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let start = Arc::new(tokio::sync::Barrier::new(WRITERS as usize));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, start) = (store.clone(), start.clone());
        writers.push(tokio::spawn(async move {
            start.wait().await;
            let user = format!("o{w}");
            let mut taken = 0u64;
            for i in 0..WRITES {
                match i % 10 {
                    // Now and then a multi-version write: a new account plus a nick of the writer's
                    // own, then that account deleted again.
                    3 => {
                        let extra = format!("o{w}x{i}");
                        store
                            .import_accounts(
                                APP,
                                &[new(&extra, None, None), new(&user, Some("n"), None)],
                                ADMIN.into(),
                            )
                            .await
                            .expect("concurrent import");
                        store
                            .delete_accounts(APP, &[id(&extra)], ADMIN.into())
                            .await
                            .expect("concurrent delete");
                        taken += 3;
                    }
                    _ => {
                        store
                            .set_profile(
                                APP,
                                &id(&user),
                                &[(custom("Seq"), ProfileValue::Int(i))],
                                (&user).into(),
                            )
                            .await
                            .expect("concurrent set_profile");
                        taken += 1;
                    }
                }
            }
            taken
        }));
    }
    let mut total = base;
    for w in writers {
        total += w.await.expect("writer task");
    }
    done.store(true, Ordering::SeqCst);
    let (seen, growths) = reader.await.expect("reader task");
    assert_eq!(seen, total, "the reader ends having seen every version");
    assert_eq!(store.current_version(APP).await.unwrap(), total);
    assert!(
        growths >= 2,
        "the reader saw the log grow only {growths} time(s): it did not run alongside the writers"
    );
}

async fn dump_and_restore_preserve_everything(store: &dyn Store) {
    const APP: AppId = 1_400_000_305;
    // Far from APP, and negative as an i64: `apps()` must still sort it after APP.
    const COPY: AppId = u64::MAX - 7;
    const NEVER: AppId = 1_400_000_307;
    store
        .import_accounts(
            APP,
            &[
                new("a", Some("Ann"), None),
                new("b", None, None),
                new("c", None, Some("https://x.test/c.png")),
            ],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(
            APP,
            &id("a"),
            &[
                (custom("Max"), ProfileValue::Int(u64::MAX)),
                (custom("Odd"), text("nul:\0 深 \"q\"")),
            ],
            "a".into(),
        )
        .await
        .unwrap();
    store.kick(APP, &id("b"), 1_700_000_000).await.unwrap();
    store.kick(APP, &id("c"), 1_600_000_000).await.unwrap();
    store
        .delete_accounts(APP, &[id("c")], "ops".into())
        .await
        .unwrap();
    store.set_cursor(APP, "webhook", 3).await.unwrap();
    store.set_cursor(APP, "other", 0).await.unwrap();

    let dump = store.dump_app(APP).await.expect("dump_app");
    dump.check().expect("a dump passes its own check");
    assert_eq!(dump.app, APP);
    assert_eq!(dump.version, store.current_version(APP).await.unwrap());
    assert_eq!(dump.version, 5);
    assert_eq!(dump.changes, all_changes(store, APP).await, "the whole log");
    assert_eq!(
        dump.cursors,
        vec![("other".to_owned(), 0), ("webhook".to_owned(), 3)]
    );
    let profiles = store.get_profiles(APP, &ids(&["a", "b"])).await.unwrap();
    assert_eq!(
        dump.accounts
            .iter()
            .map(|a| (a.user.as_str(), Some(a.profile.clone())))
            .collect::<Vec<_>>(),
        vec![("a", profiles[0].clone()), ("b", profiles[1].clone())],
        "accounts by UserID, as get_profiles sees them"
    );
    assert_eq!(
        dump.kicks,
        vec![
            ("b".to_owned(), 1_700_000_000),
            ("c".to_owned(), 1_600_000_000)
        ],
        "every kick by UserID, the deleted account's included"
    );
    let never = store.dump_app(NEVER).await.unwrap();
    assert!(never.is_empty(), "an app never written: {never:?}");

    // Read the target first, so that a cache in front of the store holds "absent" for it.
    assert_eq!(
        store.accounts_exist(COPY, &ids(&["a", "b"])).await.unwrap(),
        vec![false, false]
    );
    let copy = AppDump {
        app: COPY,
        ..dump.clone()
    };
    store.restore_app(copy.clone()).await.expect("restore_app");
    assert_eq!(
        store.dump_app(COPY).await.unwrap(),
        copy,
        "restored exactly"
    );
    assert_eq!(
        store
            .get_profiles(COPY, &ids(&["a", "b", "c"]))
            .await
            .unwrap(),
        store
            .get_profiles(APP, &ids(&["a", "b", "c"]))
            .await
            .unwrap(),
        "the ordinary reads agree (no stale cache)"
    );
    assert_eq!(
        store
            .accounts_exist(COPY, &ids(&["a", "b", "c"]))
            .await
            .unwrap(),
        vec![true, true, false]
    );
    assert_eq!(
        store.kicks(COPY).await.unwrap(),
        store.kicks(APP).await.unwrap()
    );
    assert_eq!(store.cursor(COPY, "webhook").await.unwrap(), Some(3));
    assert_eq!(store.current_version(COPY).await.unwrap(), 5);
    assert_eq!(
        all_changes(store, COPY).await,
        all_changes(store, APP).await
    );
    let apps = store.apps().await.unwrap();
    assert!(
        apps.contains(&APP) && apps.contains(&COPY) && !apps.contains(&NEVER),
        "{apps:?}"
    );
    assert!(
        apps.windows(2).all(|w| w[0] < w[1]),
        "apps() is ascending as u64, without duplicates: {apps:?}"
    );
    assert_eq!(
        store
            .set_profile(COPY, &id("b"), &[(custom("Next"), text("x"))], ADMIN.into())
            .await
            .unwrap(),
        6,
        "writes continue after the restored version"
    );

    let before = store.dump_app(COPY).await.unwrap();
    let err = store
        .restore_app(copy.clone())
        .await
        .expect_err("restoring into an app that holds data");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        store.dump_app(COPY).await.unwrap(),
        before,
        "nothing written"
    );

    // Inconsistent dumps are refused before anything is written.
    let broken = [
        AppDump {
            app: NEVER,
            version: 2,
            ..dump.clone()
        },
        AppDump {
            app: NEVER,
            changes: dump.changes.iter().rev().cloned().collect(),
            ..dump.clone()
        },
        AppDump {
            app: NEVER,
            accounts: vec![dump.accounts[0].clone(), dump.accounts[0].clone()],
            ..dump.clone()
        },
    ];
    for bad in broken {
        let err = store
            .restore_app(bad)
            .await
            .expect_err("an inconsistent dump");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
    assert!(store.dump_app(NEVER).await.unwrap().is_empty());

    // An app that has only a cursor is listed and moves too.
    let cursor_only = AppDump {
        app: NEVER,
        cursors: vec![("webhook".to_owned(), 0)],
        ..AppDump::default()
    };
    store.restore_app(cursor_only.clone()).await.unwrap();
    assert_eq!(store.dump_app(NEVER).await.unwrap(), cursor_only);
    assert!(store.apps().await.unwrap().contains(&NEVER));
}
