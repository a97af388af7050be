//! `portrait migrate` and `portrait export | import` end to end: data written to the embedded
//! SQLite store moves into PostgreSQL (a fresh schema of the test database, see
//! `portrait_store::testkit::fresh_postgres_url`) with every version preserved, and reads back.
//! PostgreSQL must be running: these tests fail, saying how to start it, when it is not.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_store::postgres::PgStore;
use portrait_store::sqlite::SqliteStore;
use portrait_store::{testkit, AppDump, NewAccount, Store};

const APP: u64 = 1_400_000_001;
const OTHER: u64 = u64::MAX;

fn id(s: &str) -> Identifier {
    Identifier::parse(s).unwrap()
}

fn portrait(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portrait"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run portrait");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        pipe.write_all(bytes).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A SQLite store at `url` with two apps of history; returns their dumps.
async fn embedded_store_with_history(url: &str) -> Vec<AppDump> {
    let store = SqliteStore::open(url).await.unwrap();
    let accounts: Vec<NewAccount> = ["alice", "bob", "carol"]
        .iter()
        .map(|u| NewAccount::with_nick_face(id(u), Some(u.to_uppercase()), None))
        .collect();
    store
        .import_accounts(APP, &accounts, "admin".into())
        .await
        .unwrap();
    for i in 0..5u64 {
        store
            .set_profile(
                APP,
                &id("alice"),
                &[
                    (Tag::Standard(StandardTag::Level), ProfileValue::Int(i)),
                    (
                        Tag::Custom("Tag_Profile_Custom_Big".into()),
                        ProfileValue::Int(u64::MAX - i),
                    ),
                ],
                "alice".into(),
            )
            .await
            .unwrap();
    }
    store
        .delete_accounts(APP, &[id("carol")], "admin".into())
        .await
        .unwrap();
    store.kick(APP, &id("bob"), 1_700_000_000).await.unwrap();
    store.set_cursor(APP, "webhook", 4).await.unwrap();
    store
        .import_accounts(
            OTHER,
            &[NewAccount::with_nick_face(
                id("zed"),
                Some("Zed 深 \0".into()),
                Some("https://x.test/z.png".into()),
            )],
            "admin".into(),
        )
        .await
        .unwrap();
    let dumps = vec![
        store.dump_app(APP).await.unwrap(),
        store.dump_app(OTHER).await.unwrap(),
    ];
    store.close().await;
    assert_eq!(dumps[0].version, 9);
    dumps
}

async fn assert_holds(pg_url: &str, dumps: &[AppDump]) {
    let pg = PgStore::open(pg_url).await.unwrap();
    assert_eq!(
        pg.apps().await.unwrap(),
        dumps.iter().map(|d| d.app).collect::<Vec<_>>()
    );
    for dump in dumps {
        assert_eq!(
            &pg.dump_app(dump.app).await.unwrap(),
            dump,
            "app {}",
            dump.app
        );
    }
    let profile = pg.get_profiles(APP, &[id("alice")]).await.unwrap()[0]
        .clone()
        .expect("alice moved");
    assert_eq!(
        profile.fields["Tag_Profile_Custom_Big"],
        ProfileValue::Int(u64::MAX - 4)
    );
    assert_eq!(profile.version, 8);
    assert_eq!(
        pg.kicks(APP).await.unwrap(),
        vec![("bob".to_owned(), 1_700_000_000)]
    );
    assert_eq!(
        pg.set_profile(
            APP,
            &id("bob"),
            &[(Tag::Standard(StandardTag::Level), ProfileValue::Int(1))],
            "bob".into()
        )
        .await
        .unwrap(),
        10,
        "PostgreSQL carries on after the embedded store's last version"
    );
    pg.close().await;
}

#[tokio::test]
async fn migrate_moves_the_embedded_store_into_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("portrait.db").display());
    let dumps = embedded_store_with_history(&sqlite).await;
    let pg = testkit::fresh_postgres_url().await;

    let out = portrait(&["migrate", "--from", &sqlite, "--to", &pg], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("copied and verified 2 apps (3 accounts, 10 changes, 1 cursor)"),
        "{}",
        stderr(&out)
    );
    assert_holds(&pg, &dumps).await;

    // Again: the target now holds the apps, so nothing is written and the command fails.
    let again = portrait(&["migrate", "--from", &sqlite, "--to", &pg], None);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already holds"),
        "{}",
        stderr(&again)
    );
}

#[tokio::test]
async fn export_then_import_moves_the_embedded_store_into_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("portrait.db").display());
    let dumps = embedded_store_with_history(&sqlite).await;

    let only = portrait(
        &["export", "--store", &sqlite, "--app", &APP.to_string()],
        None,
    );
    assert!(only.status.success(), "{}", stderr(&only));
    let text = String::from_utf8(only.stdout).unwrap();
    assert!(text.starts_with(r#"{"type":"header","format":"portrait-dump","version":3}"#));
    assert!(
        text.contains(r#"{"type":"app","app":1400000001,"version":9}"#),
        "{text}"
    );
    assert!(
        !text.contains(r#""app":18446744073709551615"#),
        "--app limits the export"
    );

    let dump = portrait(&["export", "--store", &sqlite], None);
    assert!(dump.status.success(), "{}", stderr(&dump));
    assert!(
        stderr(&dump).contains("exported 2 apps"),
        "{}",
        stderr(&dump)
    );
    let pg = testkit::fresh_postgres_url().await;
    let import = portrait(&["import", "--store", &pg], Some(&dump.stdout));
    assert!(import.status.success(), "{}", stderr(&import));
    assert!(
        stderr(&import).contains("imported 2 apps (3 accounts, 10 changes, 1 cursor)"),
        "{}",
        stderr(&import)
    );
    assert_holds(&pg, &dumps).await;

    // A truncated dump is refused as a whole.
    let cut = &dump.stdout[..dump.stdout.len() - 10];
    let pg2 = testkit::fresh_postgres_url().await;
    let bad = portrait(&["import", "--store", &pg2], Some(cut));
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("dump line"), "{}", stderr(&bad));
    let empty = PgStore::open(&pg2).await.unwrap();
    assert!(
        empty.apps().await.unwrap().is_empty(),
        "nothing was written"
    );
    empty.close().await;
}

#[test]
fn a_missing_embedded_store_is_not_created_and_read_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let url = format!("sqlite://{}", path.display());
    let out = portrait(&["export", "--store", &url], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such file"), "{}", stderr(&out));
    assert!(!path.exists(), "the mistyped store was not created");
}

#[test]
fn store_errors_never_show_the_password() {
    let out = portrait(
        &[
            "export",
            "--store",
            "postgres://portrait:hunter2@127.0.0.1:1/portrait",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("opening store postgres://portrait:***@127.0.0.1:1/portrait"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}
