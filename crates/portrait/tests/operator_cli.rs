//! The operator commands (`portrait app|field|account …`) of the real binary against a live
//! `portrait serve` with the operator API on: an app created and given a custom field from the
//! shell and used at once, accounts listed, shown, kicked and deleted; `--json` answers parsed as
//! the API's types, the human-readable answers, and failures (exit code 1 with the API's code
//! and message). Every command goes through `portrait_client::Operator`, so this also exercises
//! the client crate's methods end to end.

mod common;

use std::process::{Command, Output};

use portrait_client::operator::{
    AccountList, AccountView, AppCreated, AppKey, AppList, AppView, FieldList, FieldView,
};
use portrait_client::AdminClient;
use serde_json::json;

const TOKEN: &str = "cli-test-operator-token-0123456789";

/// A node with the test app and the operator API on.
fn start(dir: &std::path::Path) -> common::Node {
    let mut cmd = common::serve_command(dir);
    cmd.env("PORTRAIT_APPS", common::apps_env())
        .env("PORTRAIT_OPERATOR__TOKEN", TOKEN);
    common::launch(cmd)
}

/// Runs `portrait ARGS` against `node` with the token in the environment.
fn portrait(node: &common::Node, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portrait"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORTRAIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("PORTRAIT_SERVER", &node.base)
        .env("PORTRAIT_OPERATOR_TOKEN", TOKEN)
        .output()
        .expect("run portrait")
}

/// The stdout of a run that must succeed.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "portrait failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The stderr of a run that must fail with exit code 1.
fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Parses the `--json` answer of a run that must succeed.
fn json<T: serde::de::DeserializeOwned>(out: &Output) -> T {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn account_commands_list_show_kick_and_delete_through_the_operator_api() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let app = common::APP.to_string();
    let admin = AdminClient::new(&node.base, common::APP, "administrator", common::KEY);
    for user in ["alice", "bob", "carol"] {
        admin.account_import(user, None, None).await.unwrap();
    }
    let r = admin
        .portrait_set("alice", &[("Tag_Profile_IM_Nick", json!("Alice"))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0);

    let list: AccountList = json(&portrait(&node, &["account", "list", &app, "--json"]));
    assert_eq!(list.accounts, ["administrator", "alice", "bob", "carol"]);
    assert_eq!(list.next, None);
    let page = portrait(&node, &["account", "list", &app, "--limit", "2"]);
    assert_eq!(ok(&page), "administrator\nalice\n", "one UserID per line");
    assert!(
        String::from_utf8_lossy(&page.stderr).contains("more: --after alice"),
        "{page:?}"
    );
    let rest = portrait(
        &node,
        &["account", "list", &app, "--after", "alice", "--all"],
    );
    assert_eq!(ok(&rest), "bob\ncarol\n");
    let prefixed: AccountList = json(&portrait(
        &node,
        &["account", "--json", "list", &app, "--prefix", "a"],
    ));
    assert_eq!(prefixed.accounts, ["administrator", "alice"]);

    let view: AccountView = json(&portrait(
        &node,
        &["account", "show", &app, "alice", "--json"],
    ));
    assert_eq!(view.profile["Tag_Profile_IM_Nick"], json!("Alice"));
    assert_eq!(view.changes[0].version, view.version);
    assert_eq!(view.changes[0].operator, "administrator");
    let text = ok(&portrait(&node, &["account", "show", &app, "alice"]));
    assert!(
        text.contains(&format!("version  {}", view.version)),
        "{text}"
    );
    assert!(text.contains("Tag_Profile_IM_Nick"), "{text}");
    assert!(text.contains("\"Alice\""), "{text}");
    assert!(text.contains("by administrator from 127.0.0.1"), "{text}");
    assert!(text.contains("kicked   no"), "{text}");

    let kicked = ok(&portrait(&node, &["account", "kick", &app, "alice"]));
    assert_eq!(kicked, format!("kicked alice (app {app})\n"));
    let view: AccountView = json(&portrait(
        &node,
        &["account", "show", &app, "alice", "--json"],
    ));
    assert!(view.kicked_until.is_some());

    ok(&portrait(
        &node,
        &["account", "delete", &app, "bob", "--json"],
    ));
    let list: AccountList = json(&portrait(&node, &["account", "list", &app, "--json"]));
    assert_eq!(list.accounts, ["administrator", "alice", "carol"]);

    // Failures: exit code 1, the API's code and message on stderr.
    let err = failed(&portrait(&node, &["account", "show", &app, "bob"]));
    assert!(err.contains("HTTP 404 account_not_found"), "{err}");
    assert!(err.contains("bob"), "{err}");
    let err = failed(&portrait(&node, &["account", "list", "1499999999"]));
    assert!(err.contains("app_not_found"), "{err}");
    let err = failed(&portrait(
        &node,
        &["account", "list", &app, "--token", "wrong"],
    ));
    assert!(err.contains("HTTP 401 unauthorized"), "{err}");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portrait"));
    let out = cmd
        .args([
            "account",
            "list",
            &app,
            "--server",
            &node.base,
            "--token-file",
        ])
        .arg(&token_file)
        .env_remove("PORTRAIT_OPERATOR_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        ok(&out),
        "administrator\nalice\ncarol\n",
        "the token from a file"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_portrait"))
        .args(["account", "list", &app, "--server", &node.base])
        .env_remove("PORTRAIT_OPERATOR_TOKEN")
        .output()
        .unwrap();
    assert!(failed(&out).contains("no operator token"));
}

#[tokio::test]
async fn app_and_field_commands_show_the_file_app() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let app = common::APP.to_string();

    let apps: AppList = json(&portrait(&node, &["app", "list", "--json"]));
    assert_eq!(apps.apps.len(), 1);
    assert_eq!(apps.apps[0].sdkappid, common::APP);
    let table = ok(&portrait(&node, &["app", "list"]));
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("SDKAPPID"), "{table}");
    assert!(
        rows[1].starts_with(&app) && rows[1].contains("file"),
        "{table}"
    );
    assert!(rows[1].contains("enabled"), "{table}");
    let shown = ok(&portrait(&node, &["app", "show", &app]));
    assert!(
        shown.contains("admins                   administrator"),
        "{shown}"
    );
    let fields: FieldList = json(&portrait(&node, &["field", "list", &app, "--json"]));
    assert!(fields.fields.is_empty());
    let err = failed(&portrait(&node, &["app", "show", "1499999999"]));
    assert!(err.contains("HTTP 404 app_not_found"), "{err}");
    // The embedded store has no shards: a move says so (moves: multinode/shards.rs).
    let err = failed(&portrait(&node, &["app", "move", &app, "--to", "b"]));
    assert!(
        err.contains("HTTP 400 invalid") && err.contains("no [store] shards"),
        "{err}"
    );
}

#[tokio::test]
async fn an_app_created_and_given_a_field_from_the_shell_is_used_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let id = "1400000077";

    let created: AppCreated = json(&portrait(
        &node,
        &[
            "app",
            "create",
            "--sdkappid",
            id,
            "--admin",
            "boss",
            "--json",
        ],
    ));
    assert_eq!(created.app.sdkappid, 1_400_000_077);
    assert_eq!(created.app.admins, ["boss"]);
    assert_eq!(created.key.len(), 64, "a generated key");
    let text = ok(&portrait(&node, &["app", "create"]));
    assert!(text.starts_with("created app 1"), "{text}");
    assert!(text.contains("source                   store"), "{text}");
    let key_line = text
        .lines()
        .find(|l| l.starts_with("secret key: "))
        .unwrap();
    assert_eq!(key_line.len(), "secret key: ".len() + 64, "{text}");

    let field: FieldView = json(&portrait(
        &node,
        &[
            "field",
            "add",
            id,
            "Hobby",
            "--type",
            "string",
            "--max-length",
            "16",
            "--json",
        ],
    ));
    assert_eq!(
        (field.name.as_str(), field.max_length, field.hidden),
        ("Tag_Profile_Custom_Hobby", 16, false)
    );
    let table = ok(&portrait(
        &node,
        &[
            "field", "add", id, "Score", "--type", "integer", "--write", "admin",
        ],
    ));
    let row = table.lines().nth(1).unwrap();
    assert!(row.starts_with("Tag_Profile_Custom_Score"), "{table}");
    assert!(
        row.contains("integer") && row.contains("user,admin") && row.contains(" admin "),
        "{table}"
    );

    // The app and its field work at once, without a restart.
    let admin = AdminClient::new(&node.base, 1_400_000_077, "boss", &created.key);
    admin.account_import("alice", None, None).await.unwrap();
    let r = admin
        .portrait_set("alice", &[("Tag_Profile_Custom_Hobby", json!("chess"))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);

    let list: AccountList = json(&portrait(&node, &["account", "list", id, "--json"]));
    assert_eq!(list.accounts, ["alice", "boss"]);
    assert_eq!(
        ok(&portrait(&node, &["account", "list", id])),
        "alice\nboss\n"
    );
    let view: AccountView = json(&portrait(
        &node,
        &["account", "show", id, "alice", "--json"],
    ));
    assert_eq!(view.profile["Tag_Profile_Custom_Hobby"], json!("chess"));
    assert_eq!(view.changes[0].operator, "boss");
    let text = ok(&portrait(&node, &["account", "show", id, "alice"]));
    assert!(
        text.contains("Tag_Profile_Custom_Hobby = \"chess\""),
        "{text}"
    );

    // Hidden, a field is gone from the APIs but shown to the operator with its value.
    let table = ok(&portrait(&node, &["field", "hide", id, "Hobby"]));
    assert!(table.lines().nth(1).unwrap().ends_with("yes"), "{table}");
    let view: AccountView = json(&portrait(
        &node,
        &["account", "show", id, "alice", "--json"],
    ));
    assert_eq!(view.profile["Tag_Profile_Custom_Hobby"], json!("chess"));
    let fields: FieldList = json(&portrait(&node, &["field", "list", id, "--json"]));
    assert!(fields.fields[0].hidden && !fields.fields[1].hidden);
    ok(&portrait(
        &node,
        &["field", "show", id, "Tag_Profile_Custom_Hobby"],
    ));

    // Settings, keys, disabling.
    let shown: AppView = json(&portrait(&node, &["app", "show", id, "--json"]));
    let rev = shown.revision.to_string();
    let updated: AppView = json(&portrait(
        &node,
        &[
            "app",
            "update",
            id,
            "--admin",
            "boss",
            "--admin",
            "boss2",
            "--if-match",
            &rev,
            "--json",
        ],
    ));
    assert_eq!(updated.admins, ["boss", "boss2"]);
    let err = failed(&portrait(
        &node,
        &[
            "app",
            "update",
            id,
            "--sensitive-word",
            "x",
            "--if-match",
            &rev,
        ],
    ));
    assert!(err.contains("HTTP 412 revision_mismatch"), "{err}");
    assert_eq!(
        ok(&portrait(&node, &["app", "key", id])),
        format!("{}\n", created.key)
    );
    let rotated: AppKey = json(&portrait(
        &node,
        &["app", "rotate-key", id, "--grace-secs", "60", "--json"],
    ));
    assert_ne!(rotated.key, created.key);
    assert!(rotated.previous_key_valid_until.is_some());
    let text = ok(&portrait(&node, &["app", "disable", id]));
    assert!(text.contains("state                    disabled"), "{text}");
    let text = ok(&portrait(&node, &["app", "enable", id]));
    assert!(text.contains("state                    enabled"), "{text}");
    assert_eq!(
        ok(&portrait(&node, &["app", "webhook", id])),
        "no webhook configured\n"
    );
    let err = failed(&portrait(&node, &["app", "create", "--sdkappid", id]));
    assert!(err.contains("HTTP 409 app_exists"), "{err}");
}
