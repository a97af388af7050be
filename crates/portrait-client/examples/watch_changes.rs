//! A user watching the change feed: read a profile, then follow its changes from that version
//! on, reconnecting by itself, with a refresh hook for new UserSigs.
//!
//! ```text
//! PORTRAIT_URL=http://127.0.0.1:8080 PORTRAIT_SDKAPPID=1400000001 PORTRAIT_USER=alice \
//! PORTRAIT_KEY=<the app's secret key> PORTRAIT_WATCH=bob \
//!   cargo run -p portrait-client --example watch_changes
//! ```
//!
//! A real client gets its UserSigs from the app's backend; this example mints them from the key
//! (as a backend would) to stay self-contained. The server's test suite runs [`run`] against a
//! live server (`tests/api/client_crate.rs`).

use futures_util::StreamExt;
use portrait_client::{refresh_with, FeedEvent, ProfileEvent, User};

/// A UserSig for `user`, valid for `ttl` seconds (what the app's backend would hand out).
pub fn mint(sdkappid: u64, key: &str, user: &str, ttl: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    portrait_core::usersig::mint(sdkappid, key, user, now, ttl)
}

/// Signs in as `user`, reads `watch`'s profile, then prints its changes after `since` (default:
/// the version just read) until `count` have arrived, and returns them.
///
/// # Errors
/// A failed call, or a terminal feed error (sign-in refused, kicked, refresh failed).
pub async fn run(
    base: &str,
    sdkappid: u64,
    key: &str,
    user: &str,
    watch: &str,
    since: Option<u64>,
    count: usize,
) -> portrait_client::Result<Vec<ProfileEvent>> {
    let key_for_hook = key.to_owned();
    let user_for_hook = user.to_owned();
    let client = User::builder(base, sdkappid, user, mint(sdkappid, key, user, 3600))
        // Called when the UserSig expires: ask your backend for a new one here.
        .refresh(refresh_with(move || {
            let sig = mint(sdkappid, &key_for_hook, &user_for_hook, 3600);
            async move { Ok(sig) }
        }))
        .build()?;

    let profiles = client
        .get_user_profile(&[watch], &["Tag_Profile_IM_Nick"])
        .await?;
    let Some(profile) = profiles.get(watch) else {
        println!("{watch} cannot be read: {:?}", profiles.failed);
        return Ok(Vec::new());
    };
    println!(
        "{watch} is {:?} at version {:?}",
        profile.nick, profile.version
    );

    let mut feed = client.changes(&[watch], since.or(profile.version));
    let mut seen = Vec::new();
    while seen.len() < count {
        match feed.next().await {
            Some(Ok(FeedEvent::Change(ev))) if ev.account == watch => {
                println!(
                    "{} {} by {}: {:?}",
                    ev.account, ev.kind, ev.operator, ev.items
                );
                seen.push(ev);
            }
            Some(Ok(FeedEvent::Change(ev))) => println!("own profile changed: {:?}", ev.items),
            Some(Ok(FeedEvent::Live { cursor })) => println!("live (cursor {cursor})"),
            // Gaps and lost connections: the feed goes on by itself.
            Some(Err(e)) if !e.is_terminal() => eprintln!("feed: {e}"),
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
    }
    Ok(seen)
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
        &env("PORTRAIT_KEY"),
        &env("PORTRAIT_USER"),
        &env("PORTRAIT_WATCH"),
        None,
        usize::MAX,
    )
    .await?;
    Ok(())
}
