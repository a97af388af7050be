//! Kicks that stick (issue #15, defect 6): a kick revokes the UserSigs minted before it for good,
//! through `account_delete` + `account_import` of the account and across a restart.

use portrait_client::user::UserClient;
use portrait_core::usersig::mint;
use portrait_server::settings::PushSettings;

use crate::helpers::*;

/// The code `get_my_profile` answers `sig` of alice with, on `app`.
async fn code_of(app: &TestApp, sig: &str) -> u64 {
    UserClient::new(&app.base, APP, "alice", sig.to_owned())
        .get_my_profile(None)
        .await
        .unwrap()
        .code()
}

#[tokio::test]
async fn a_kick_survives_account_delete_reimport_and_a_restart() {
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    let mut first = spawn_on(
        store.clone(),
        vec![test_app()],
        PushSettings::default(),
        "127.0.0.1:0",
    )
    .await;
    first.import(&["alice"]).await;
    let old = mint(APP, KEY, "alice", now() - 10, 3600);
    assert_eq!(code_of(&first, &old).await, 0);

    let kicked_at = now();
    first.admin.kick("alice").await.unwrap().expect_ok();
    assert_eq!(code_of(&first, &old).await, 70001, "revoked by the kick");

    first
        .admin
        .account_delete(&["alice"])
        .await
        .unwrap()
        .expect_ok();
    first.import(&["alice"]).await;
    assert_eq!(
        code_of(&first, &old).await,
        70001,
        "deleting and importing the account again does not bring the pre-kick sig back"
    );
    // Dated after the kick plus the allowed clock skew (2 s), used once it is no longer ahead
    // of the server's clock by more than the skew.
    let dated = kicked_at + 4;
    while now() + 2 < dated {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let new = mint(APP, KEY, "alice", dated, 3600);
    assert_eq!(
        code_of(&first, &new).await,
        0,
        "a sig minted after the kick works"
    );

    first.stop().await;
    let second = spawn_on(
        store.clone(),
        vec![test_app()],
        PushSettings::default(),
        "127.0.0.1:0",
    )
    .await;
    assert_eq!(
        code_of(&second, &old).await,
        70001,
        "still revoked after a restart on the same data"
    );
    assert_eq!(code_of(&second, &new).await, 0);
}
