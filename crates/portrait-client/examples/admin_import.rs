//! An app's backend: import accounts with a nickname and avatar, set profile fields, read them
//! back typed, and handle a vendor error.
//!
//! ```text
//! PORTRAIT_URL=http://127.0.0.1:8080 PORTRAIT_SDKAPPID=1400000001 \
//! PORTRAIT_ADMIN=administrator PORTRAIT_KEY=<the app's secret key> \
//!   cargo run -p portrait-client --example admin_import
//! ```
//!
//! The server's test suite runs [`run`] against a live server (`tests/api/client_crate.rs`).

use std::time::Duration;

use portrait_client::{
    Admin, AllowType, ClientError, Gender, ImportAccount, ProfileUpdate, Profiles,
};

/// Imports `alice` and `bob`, sets alice's profile, and returns both profiles as read back.
///
/// # Errors
/// Any failed call (a vendor code is `ClientError::Api`).
pub async fn run(
    base: &str,
    sdkappid: u64,
    admin: &str,
    key: &str,
) -> portrait_client::Result<Profiles> {
    let admin = Admin::builder(base, sdkappid, admin, key)
        .timeout(Duration::from_secs(10))
        .build()?;

    // Up to 100 accounts per call, each with an optional Nick and FaceUrl.
    let failed = admin
        .multiaccount_import(&[
            ImportAccount::new("alice")
                .nick("Alice")
                .face_url("https://example.com/alice.png"),
            ImportAccount::new("bob").nick("Bob"),
        ])
        .await?;
    assert!(failed.is_empty(), "not imported: {failed:?}");

    admin
        .portrait_set(
            "alice",
            &ProfileUpdate::new()
                .nick("Alice A.")
                .gender(Gender::Female)
                .allow_type(AllowType::AllowAny)
                .level(3),
        )
        .await?;

    // A vendor error is an Err carrying the code and ErrorInfo.
    match admin
        .portrait_set("nobody", &ProfileUpdate::new().nick("x"))
        .await
    {
        Err(ClientError::Api { code, info }) => println!("as expected, {code}: {info}"),
        other => println!("unexpected: {other:?}"),
    }

    let profiles = admin
        .portrait_get(
            &["alice", "bob"],
            &[
                "Tag_Profile_IM_Nick",
                "Tag_Profile_IM_Gender",
                "Tag_Profile_IM_AllowType",
                "Tag_Profile_IM_Image",
                "Tag_Profile_IM_Level",
            ],
        )
        .await?;
    for p in &profiles.found {
        println!(
            "{}: nick {:?}, gender {:?}, allow {:?}, avatar {:?}, level {:?}",
            p.user_id, p.nick, p.gender, p.allow_type, p.image, p.level
        );
    }
    Ok(profiles)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name}"))
}

#[tokio::main]
async fn main() -> portrait_client::Result<()> {
    let sdkappid = env("PORTRAIT_SDKAPPID")
        .parse()
        .expect("PORTRAIT_SDKAPPID is a number");
    run(
        &env("PORTRAIT_URL"),
        sdkappid,
        &env("PORTRAIT_ADMIN"),
        &env("PORTRAIT_KEY"),
    )
    .await?;
    Ok(())
}
