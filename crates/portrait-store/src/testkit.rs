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
//!
//! Layout: this file holds [`run_all`] (the list of checks, in the order they run) and the helpers
//! the checks share; the fresh stores live in `fresh.rs`, and the checks in one module per area:
//! `accounts`, `profiles`, `versions` (the change log), `catch_up`, `kicks`, `origin`,
//! `concurrency`, `compare_and_set`, `cursors` (and pruning), `dump`, `apps` (app records) and
//! `scan` (listing accounts). A new check goes in its
//! area's module and in [`run_all`], which is what the backends' conformance tests run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};

use crate::{AppId, Change, ChangeKind, NewAccount, Store};

mod accounts;
mod apps;
mod catch_up;
mod compare_and_set;
mod concurrency;
mod cursors;
mod dump;
mod fresh;
mod heads;
mod kicks;
mod origin;
mod profiles;
mod scan;
mod versions;

pub use catch_up::{changes_written_before_chains_are_chained, EARLIER_APP, EARLIER_LOG_SQL};
pub use fresh::{
    fresh_postgres, fresh_postgres_url, fresh_sqlite, fresh_store_from_env, test_pg_url,
    DEFAULT_TEST_PG_URL, TEST_PG_URL_ENV, TEST_STORE_ENV,
};

/// Runs the whole conformance suite against `store`.
///
/// # Panics
/// On the first check that fails.
pub async fn run_all(store: Arc<dyn Store>) {
    let s = &*store;
    accounts::importing_new_accounts_creates_them_with_one_change_each(s).await;
    accounts::reimporting_without_nick_or_face_writes_nothing(s).await;
    accounts::reimporting_with_nick_or_face_writes_only_those(s).await;
    accounts::an_account_listed_twice_in_one_import_gets_one_change(s).await;
    accounts::accounts_exist_answers_per_requested_user(s).await;
    profiles::set_profile_writes_all_items_and_later_items_win(s).await;
    profiles::set_profile_on_missing_account_writes_nothing(s).await;
    profiles::get_profiles_answers_in_request_order_with_none_and_duplicates(s).await;
    profiles::get_profiles_answers_large_batches(s).await;
    versions::versions_increase_strictly_per_app_and_apps_are_independent(s).await;
    versions::changes_since_honours_since_limit_and_order(s).await;
    catch_up::changes_of_reads_only_the_given_accounts_in_version_order(s).await;
    catch_up::changes_of_follows_an_account_through_delete_reimport_and_pruning(s).await;
    catch_up::changes_of_says_where_a_long_walk_stopped(store.clone()).await;
    accounts::delete_removes_profiles_and_records_one_change_per_account(s).await;
    kicks::kick_records_revocation_and_kicks_lists_kicked_accounts(s).await;
    heads::app_heads_follow_every_apps_version_and_kicks(s).await;
    catch_up::a_kick_outlives_delete_and_reimport(s).await;
    origin::every_change_records_its_operator_and_client_ip(s).await;
    versions::apps_are_isolated(s).await;
    concurrency::concurrent_writes_get_unique_versions_and_lose_no_changes(store.clone()).await;
    concurrency::concurrent_sets_on_missing_accounts_fail_alone_and_the_others_commit(
        store.clone(),
    )
    .await;
    profiles::unicode_and_long_strings_round_trip(s).await;
    profiles::integers_up_to_u64_max_round_trip(s).await;
    compare_and_set::expected_version_guards_against_lost_updates(s).await;
    compare_and_set::concurrent_compare_and_set_lets_exactly_one_writer_win(store.clone()).await;
    compare_and_set::compare_and_set_chains_and_failing_writes_mix_with_concurrent_ones(
        store.clone(),
    )
    .await;
    cursors::cursors_are_per_app_and_name_and_overwrite(s).await;
    cursors::pruning_deletes_the_oldest_changes_and_moves_the_pruned_cursor(s).await;
    cursors::a_node_is_a_member_while_registered(s).await;
    versions::versions_become_visible_in_version_order(store.clone()).await;
    dump::dump_and_restore_preserve_everything(s).await;
    apps::app_records_are_created_once_and_replaced_on_the_expected_revision(s).await;
    apps::concurrent_app_record_puts_with_one_expectation_let_exactly_one_win(store.clone()).await;
    scan::scan_accounts_lists_by_literal_prefix_in_userid_order(s).await;
    scan::scan_accounts_pages_through_every_account_once(s).await;
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
