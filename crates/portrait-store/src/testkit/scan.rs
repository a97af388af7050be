//! Conformance checks of listing an app's accounts ([`Store::scan_accounts`]): UserID order,
//! literal prefixes, deleted accounts left out, and paging with `after` that lists every account
//! once.

use portrait_core::Identifier;

use crate::{AppId, NewAccount, Store, MAX_SCAN};

use super::{id, ids, ADMIN};

/// One page, as strings.
async fn scan(
    store: &dyn Store,
    app: AppId,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    let after = after.map(id);
    store
        .scan_accounts(app, prefix, after.as_ref(), limit)
        .await
        .unwrap_or_else(|e| panic!("scan_accounts({prefix:?}, {after:?}, {limit}): {e}"))
        .into_iter()
        .map(Identifier::into_string)
        .collect()
}

/// Every page of `prefix`, `limit` at a time, joined.
async fn scan_all(store: &dyn Store, app: AppId, prefix: &str, limit: usize) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    loop {
        let page = scan(store, app, prefix, all.last().map(String::as_str), limit).await;
        assert!(page.len() <= limit, "a page holds at most `limit`");
        let last_page = page.len() < limit;
        all.extend(page);
        if last_page {
            return all;
        }
    }
}

async fn import(store: &dyn Store, app: AppId, users: &[&str]) {
    let accounts: Vec<NewAccount> = ids(users).into_iter().map(NewAccount::new).collect();
    store
        .import_accounts(app, &accounts, ADMIN.into())
        .await
        .expect("import");
}

pub(super) async fn scan_accounts_lists_by_literal_prefix_in_userid_order(store: &dyn Store) {
    const APP: AppId = 1_400_000_320;
    const OTHER: AppId = 1_400_000_321;
    let users = [
        "b", "a", "ab", "a%b", "a_b", "axb", "abc", "a b", "A", "%x", "_y", "~", "~~", " lead",
        "zz", "gone",
    ];
    import(store, APP, &users).await;
    import(store, OTHER, &["a", "aa", "other"]).await;
    store
        .delete_accounts(APP, &ids(&["gone", "abc"]), ADMIN.into())
        .await
        .expect("delete");

    let mut expected: Vec<String> = users
        .iter()
        .filter(|u| !["gone", "abc"].contains(u))
        .map(|u| (*u).to_owned())
        .collect();
    expected.sort(); // bytewise
    assert_eq!(
        scan(store, APP, "", None, 100).await,
        expected,
        "every account of the app, by UserID bytewise, deleted ones left out"
    );
    assert_eq!(
        scan(store, APP, "a", None, 100).await,
        ["a", "a b", "a%b", "a_b", "ab", "axb"]
    );
    assert_eq!(
        scan(store, APP, "a%", None, 100).await,
        ["a%b"],
        "% is literal"
    );
    assert_eq!(
        scan(store, APP, "a_", None, 100).await,
        ["a_b"],
        "_ is literal"
    );
    assert_eq!(scan(store, APP, "%", None, 100).await, ["%x"]);
    assert_eq!(scan(store, APP, "_", None, 100).await, ["_y"]);
    assert_eq!(
        scan(store, APP, "~", None, 100).await,
        ["~", "~~"],
        "the last character"
    );
    assert_eq!(
        scan(store, APP, "ab", None, 100).await,
        ["ab"],
        "a deleted account is gone"
    );
    assert_eq!(
        scan(store, APP, "A", None, 100).await,
        ["A"],
        "case matters"
    );
    assert!(scan(store, APP, "abc", None, 100).await.is_empty());
    assert!(scan(store, APP, "q", None, 100).await.is_empty());
    assert!(
        scan(store, APP, "é", None, 100).await.is_empty(),
        "not a UserID character"
    );
    assert!(scan(store, APP, "a\u{0}", None, 100).await.is_empty());
    assert!(scan(store, APP, "", None, 0).await.is_empty(), "limit 0");
    assert!(
        scan(store, 1_400_000_322, "", None, 10).await.is_empty(),
        "an app never written"
    );
    assert_eq!(
        scan(store, OTHER, "a", None, 10).await,
        ["a", "aa"],
        "apps are apart"
    );

    // `after` need not start with the prefix nor exist.
    assert_eq!(scan(store, APP, "a", Some("a_b"), 100).await, ["ab", "axb"]);
    assert_eq!(
        scan(store, APP, "a", Some("a_"), 100).await,
        ["a_b", "ab", "axb"]
    );
    assert_eq!(
        scan(store, APP, "a", Some("0"), 2).await,
        ["a", "a b"],
        "before the prefix"
    );
    assert!(
        scan(store, APP, "a", Some("b"), 100).await.is_empty(),
        "past the prefix"
    );
    assert_eq!(scan(store, APP, "", Some("zz"), 100).await, ["~", "~~"]);

    // Re-imported, a deleted account is listed again.
    import(store, APP, &["abc"]).await;
    assert_eq!(scan(store, APP, "ab", None, 100).await, ["ab", "abc"]);
}

pub(super) async fn scan_accounts_pages_through_every_account_once(store: &dyn Store) {
    const APP: AppId = 1_400_000_323;
    let users: Vec<String> = (0..MAX_SCAN + 5).map(|i| format!("u{i:05}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    import(store, APP, &names).await;
    import(store, APP, &["t", "v", "u", "u0"]).await;

    let page = scan(store, APP, "", None, usize::MAX).await;
    assert_eq!(page.len(), MAX_SCAN, "a page holds at most MAX_SCAN");
    assert_eq!(page[..3], ["t", "u", "u0"]);

    let mut expected = users.clone();
    expected.extend(["u".to_owned(), "u0".to_owned()]);
    expected.sort();
    for limit in [1, 7, 333, MAX_SCAN] {
        assert_eq!(
            scan_all(store, APP, "u", limit).await,
            expected,
            "pages of {limit}: complete, in order, no duplicates"
        );
    }
    let tens: Vec<String> = (100..110).map(|i| format!("u{i:05}")).collect();
    assert_eq!(scan_all(store, APP, "u0010", 3).await, tens);
}
