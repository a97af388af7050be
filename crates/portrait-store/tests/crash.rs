//! An acknowledged write survives `kill -9`: a child process (this test binary, re-run on the
//! ignored helper test) writes and reports each acknowledged version; the parent SIGKILLs it
//! mid-stream, reopens the file and finds every acknowledged write.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_store::sqlite::SqliteStore;
use portrait_store::{NewAccount, Store};

const APP: u64 = 1_400_000_000;
/// Set (to the store URL) only in the child process.
const CHILD_ENV: &str = "PORTRAIT_STORE_CRASH_CHILD_URL";
/// Acknowledged writes the parent waits for before killing the child.
const ACKED_BEFORE_KILL: u64 = 200;

fn user() -> Identifier {
    Identifier::parse("crash").unwrap()
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("portrait.db").display());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writes_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the writer process");

    let mut acked = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(v) = line.unwrap().strip_prefix("acked ") {
            acked = v.parse::<u64>().unwrap();
            if acked >= ACKED_BEFORE_KILL {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL the writer"); // `kill` is SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        acked >= ACKED_BEFORE_KILL,
        "the writer stopped after {acked} acknowledged writes"
    );

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqliteStore::open(&url).await.expect("reopen after kill -9");
        let version = store.current_version(APP).await.unwrap();
        assert!(
            version >= acked,
            "acknowledged version {acked} lost: the store is at {version}"
        );
        let changes = store.changes_since(APP, 0, usize::MAX).await.unwrap();
        let versions: Vec<u64> = changes.iter().map(|c| c.version).collect();
        assert_eq!(
            versions,
            (1..=version).collect::<Vec<_>>(),
            "the change log has no holes"
        );
        let profile = store
            .get_profiles(APP, &[user()])
            .await
            .unwrap()
            .pop()
            .flatten()
            .unwrap();
        assert_eq!(profile.version, version, "the data matches the log");
        store.close().await;
    });
}

/// The writer process; does nothing unless run by [`acknowledged_writes_survive_kill_9`].
#[tokio::test]
#[ignore = "helper process of acknowledged_writes_survive_kill_9"]
async fn child_writes_until_killed() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open(&url).await.unwrap();
    store
        .import_accounts(APP, &[NewAccount::new(user())], "admin".into())
        .await
        .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let items = [(Tag::Standard(StandardTag::Level), ProfileValue::Int(i))];
        let v = store
            .set_profile(APP, &user(), &items, "admin".into())
            .await
            .unwrap();
        writeln!(out, "acked {v}").unwrap();
        out.flush().unwrap();
    }
}
