//! Conformance check of `app_heads`: every app's version and kicks revision in one read, the
//! version following the app's writes and the kicks revision its kicks (restored ones included).

use crate::{AppHead, AppId, Store};

use super::{custom, id, new, text, ADMIN};

/// `app`'s head in `store.app_heads()` (`None`: not listed), after checking the order.
async fn head(store: &dyn Store, app: AppId) -> Option<AppHead> {
    let heads = store.app_heads().await.expect("app_heads");
    assert!(
        heads.windows(2).all(|w| w[0].app < w[1].app),
        "app_heads lists each app once, by ascending app: {heads:?}"
    );
    heads.into_iter().find(|h| h.app == app)
}

pub(super) async fn app_heads_follow_every_apps_version_and_kicks(store: &dyn Store) {
    const APP: AppId = 1_400_000_401;
    // Negative as an i64: still listed in order, and as itself.
    const OTHER: AppId = u64::MAX - 401;
    const COPY: AppId = 1_400_000_403;
    assert!(
        head(store, APP)
            .await
            .is_none_or(|h| h.version == 0 && h.kicks == 0),
        "an app never written has version 0 and kicks revision 0"
    );

    store
        .import_accounts(
            APP,
            &[new("a", None, None), new("b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    let imported = head(store, APP).await.expect("a written app is listed");
    assert_eq!(imported.version, store.current_version(APP).await.unwrap());

    store
        .set_profile(APP, &id("a"), &[(custom("Hobby"), text("x"))], "a".into())
        .await
        .unwrap();
    let set = head(store, APP).await.unwrap();
    assert_eq!(set.version, imported.version + 1, "a set moves the version");
    assert_eq!(set.kicks, imported.kicks, "a set leaves the kicks revision");

    assert!(!store.kick(APP, &id("ghost"), 100).await.unwrap());
    assert_eq!(
        head(store, APP).await.unwrap(),
        set,
        "a kick of a missing account changes nothing"
    );
    assert!(store.kick(APP, &id("b"), 100).await.unwrap());
    let kicked = head(store, APP).await.unwrap();
    assert_eq!(
        kicked.version, set.version,
        "a kick is not a profile change"
    );
    assert_ne!(kicked.kicks, set.kicks, "a kick changes the kicks revision");
    assert!(store.kick(APP, &id("b"), 200).await.unwrap());
    let again = head(store, APP).await.unwrap();
    assert_ne!(again.kicks, kicked.kicks, "so does every later kick");

    store
        .import_accounts(OTHER, &[new("x", None, None)], ADMIN.into())
        .await
        .unwrap();
    let other = head(store, OTHER).await.expect("the other app is listed");
    assert_eq!(other.version, store.current_version(OTHER).await.unwrap());
    assert_eq!(
        head(store, APP).await.unwrap(),
        again,
        "apps are independent"
    );

    let dump = store.dump_app(APP).await.unwrap();
    let mut copy = dump.clone();
    copy.app = COPY;
    store.restore_app(copy).await.unwrap();
    let restored = head(store, COPY).await.expect("a restored app is listed");
    assert_eq!(restored.version, dump.version, "a restore sets the version");
    assert_ne!(
        restored.kicks, 0,
        "restored kicks change the kicks revision"
    );
}
