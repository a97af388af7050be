//! The operator commands (`portrait app …`, `portrait field …`, `portrait account …`): the
//! operator API (`/admin/v1`, docs/operator-api.md) from a shell, through `portrait_client`'s
//! [`Operator`]. Every command takes `--server` (env `PORTRAIT_SERVER`) and the operator token
//! (`--token`, env `PORTRAIT_OPERATOR_TOKEN`, or `--token-file`); it prints a human-readable
//! answer, or with `--json` the API's JSON answer. A refusal is an error naming the API's code
//! and message (the process exits non-zero).
//!
//! What must not live here: HTTP (the client crate speaks to the server), and the wording of the
//! human-readable answers (`ops/show.rs`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use portrait_client::operator::{
    AppCreate, AppPatch, CustomKind, FieldAdd, FieldPatch, KeyRotate, WebhookSettings, Who,
};
use portrait_client::Operator;
use serde::Serialize;

mod show;

/// Where the server is and how to sign in, and how to print answers: taken by every operator
/// command, before or after its subcommand.
#[derive(Args, Debug)]
pub struct Conn {
    /// The server's base URL.
    #[arg(
        long,
        env = "PORTRAIT_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// The operator token (`[operator] token` of the server).
    #[arg(
        long,
        env = "PORTRAIT_OPERATOR_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    /// A file holding the operator token (e.g. the one the server wrote on first start).
    #[arg(long, global = true, conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON answer instead of text.
    #[arg(long, global = true)]
    json: bool,
}

/// `portrait app …`.
#[derive(Subcommand, Debug)]
pub enum AppCmd {
    /// Create an app; prints it with its secret key.
    Create {
        /// The SDKAppID (default: a free one is chosen).
        #[arg(long)]
        sdkappid: Option<u64>,
        /// The secret key (default: 64 random hex digits).
        #[arg(long)]
        key: Option<String>,
        /// An admin identifier (repeatable; default: administrator).
        #[arg(long = "admin", value_name = "IDENTIFIER")]
        admins: Vec<String>,
        /// The webhook's callback URL.
        #[arg(long)]
        webhook_url: Option<String>,
        /// The shard (`[store] shards`) to place the app on (default: the one with the fewest apps).
        #[arg(long)]
        shard: Option<String>,
    },
    /// Move an app's data to another shard while it is served (writes wait, briefly).
    Move {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// The shard to move it to (a name of `[store] shards`, or `home`).
        #[arg(long)]
        to: String,
    },
    /// List every app of the server.
    List,
    /// Show an app (never its key).
    Show {
        /// The app's SDKAppID.
        sdkappid: u64,
    },
    /// Change an app's settings; what is not given is kept.
    Update {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// Admin identifiers (repeatable; replaces the list).
        #[arg(long = "admin", value_name = "IDENTIFIER")]
        admins: Vec<String>,
        /// Sensitive words (repeatable; replaces the list).
        #[arg(long = "sensitive-word", value_name = "WORD")]
        sensitive_words: Vec<String>,
        /// The webhook's callback URL (other webhook settings take their defaults).
        #[arg(long, conflicts_with = "no_webhook")]
        webhook_url: Option<String>,
        /// Remove the webhook.
        #[arg(long)]
        no_webhook: bool,
        /// How far ahead of the server's clock a UserSig may be dated, seconds.
        #[arg(long)]
        usersig_clock_skew_secs: Option<u64>,
        /// Any other change, as the JSON of the API's PATCH body (merged under the flags).
        #[arg(long, value_name = "JSON")]
        patch: Option<String>,
        /// Refuse the change unless the app is at this revision (see `app show`).
        #[arg(long, value_name = "REVISION")]
        if_match: Option<u64>,
    },
    /// Disable an app: every call of its admins and users is refused (its data is kept).
    Disable {
        /// The app's SDKAppID.
        sdkappid: u64,
    },
    /// Enable a disabled app.
    Enable {
        /// The app's SDKAppID.
        sdkappid: u64,
    },
    /// Print an app's secret key.
    Key {
        /// The app's SDKAppID.
        sdkappid: u64,
    },
    /// Give an app a new secret key; the old one keeps verifying UserSigs for a grace period.
    RotateKey {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// The new key (default: 64 random hex digits).
        #[arg(long)]
        key: Option<String>,
        /// How long the old key still verifies, seconds (server default: a day; 0: not at all).
        #[arg(long)]
        grace_secs: Option<u64>,
    },
    /// Show the webhook's delivery state on the server (cursor, lag, recent failures).
    Webhook {
        /// The app's SDKAppID.
        sdkappid: u64,
    },
}

/// A custom field's value type.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Kind {
    /// A UTF-8 string with a byte limit.
    String,
    /// An unsigned 64-bit integer.
    Integer,
}

/// Who a permission allows.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Role {
    /// Ordinary users (client API, SDKs).
    User,
    /// The app's admins (REST API).
    Admin,
}

/// `portrait field …`.
#[derive(Subcommand, Debug)]
pub enum FieldCmd {
    /// Add a custom field (its name and type never change; it can only be hidden).
    Add {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// The field: `Tag_Profile_Custom_<key>`, or just `<key>`.
        name: String,
        /// Its value type.
        #[arg(long = "type", value_enum)]
        kind: Kind,
        /// Byte limit of a string value (1–500; server default 500).
        #[arg(long)]
        max_length: Option<usize>,
        /// Who may read it (comma-separated; default both).
        #[arg(long, value_enum, value_delimiter = ',')]
        read: Option<Vec<Role>>,
        /// Who may write it (comma-separated; default both).
        #[arg(long, value_enum, value_delimiter = ',')]
        write: Option<Vec<Role>>,
    },
    /// List an app's custom fields, hidden ones included.
    List {
        /// The app's SDKAppID.
        sdkappid: u64,
    },
    /// Hide a field from every API (its values are kept).
    Hide {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// The field (full name or key).
        name: String,
    },
    /// Show a hidden field again.
    Show {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// The field (full name or key).
        name: String,
    },
}

/// `portrait account …`.
#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// List an app's UserIDs in order, one per line.
    List {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// Only UserIDs starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Start after this UserID (the `next` of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// UserIDs per page (server default 100, at most 1000).
        #[arg(long)]
        limit: Option<usize>,
        /// Every page, not just the first.
        #[arg(long)]
        all: bool,
    },
    /// Show an account's profile (hidden fields included), version and recent changes.
    Show {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// The UserID.
        user_id: String,
    },
    /// Revoke an account's UserSigs on every node and close its connections.
    Kick {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// The UserID.
        user_id: String,
    },
    /// Delete an account and its profile.
    Delete {
        /// The app's SDKAppID.
        sdkappid: u64,
        /// The UserID.
        user_id: String,
    },
}

/// A signed-in client and the output format.
struct Ctx {
    op: Operator,
    json: bool,
}

impl Ctx {
    /// # Errors
    /// No token, an unreadable token file, or an unusable server URL.
    fn new(conn: &Conn) -> anyhow::Result<Ctx> {
        let token = match (&conn.token, &conn.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?,
            (None, None) => anyhow::bail!(
                "no operator token: give --token, set PORTRAIT_OPERATOR_TOKEN, or --token-file"
            ),
        };
        let op = Operator::builder(&conn.server, token)
            .build()
            .context("--server")?;
        Ok(Ctx {
            op,
            json: conn.json,
        })
    }

    /// Prints `answer`: its JSON with `--json`, else `text(answer)`.
    fn print<T: Serialize>(
        &self,
        answer: &T,
        text: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(answer)?);
        } else {
            print!("{}", text(answer));
        }
        Ok(())
    }

    /// Prints `done` for an answer without a body (nothing with `--json`).
    fn done(&self, done: String) {
        if !self.json {
            println!("{done}");
        }
    }
}

/// Runs `portrait app …`.
///
/// # Errors
/// The API's refusal (its code and message), transport failures, bad arguments.
pub async fn app(conn: &Conn, cmd: AppCmd) -> anyhow::Result<()> {
    let ctx = Ctx::new(conn)?;
    let op = &ctx.op;
    let disable = matches!(cmd, AppCmd::Disable { .. });
    match cmd {
        AppCmd::Create {
            sdkappid,
            key,
            admins,
            webhook_url,
            shard,
        } => {
            let create = AppCreate {
                sdkappid,
                key,
                admins: (!admins.is_empty()).then_some(admins),
                webhook: webhook_url.map(webhook),
                shard,
                ..AppCreate::default()
            };
            ctx.print(&op.create_app(&create).await?, show::created)
        }
        AppCmd::List => ctx.print(&op.apps().await?, show::apps),
        AppCmd::Show { sdkappid } => ctx.print(&op.app(sdkappid).await?, show::app),
        AppCmd::Update {
            sdkappid,
            admins,
            sensitive_words,
            webhook_url,
            no_webhook,
            usersig_clock_skew_secs,
            patch,
            if_match,
        } => {
            let mut p: AppPatch = match patch {
                Some(json) => serde_json::from_str(&json).context("--patch")?,
                None => AppPatch::default(),
            };
            if !admins.is_empty() {
                p.admins = Some(admins);
            }
            if !sensitive_words.is_empty() {
                p.sensitive_words = Some(sensitive_words);
            }
            if let Some(url) = webhook_url {
                p.webhook = Some(Some(webhook(url)));
            }
            if no_webhook {
                p.webhook = Some(None);
            }
            if usersig_clock_skew_secs.is_some() {
                p.usersig_clock_skew_secs = usersig_clock_skew_secs;
            }
            let view = op.update_app(sdkappid, &p, if_match).await?;
            ctx.print(&view, show::app)
        }
        AppCmd::Disable { sdkappid } | AppCmd::Enable { sdkappid } => {
            let p = AppPatch {
                disabled: Some(disable),
                ..AppPatch::default()
            };
            ctx.print(&op.update_app(sdkappid, &p, None).await?, show::app)
        }
        AppCmd::Key { sdkappid } => ctx.print(&op.key(sdkappid).await?, show::key),
        AppCmd::Move { sdkappid, to } => ctx.print(&op.move_app(sdkappid, &to).await?, show::moved),
        AppCmd::RotateKey {
            sdkappid,
            key,
            grace_secs,
        } => {
            let rotate = KeyRotate { key, grace_secs };
            ctx.print(&op.rotate_key(sdkappid, &rotate).await?, show::key)
        }
        AppCmd::Webhook { sdkappid } => ctx.print(&op.webhook(sdkappid).await?, show::webhook),
    }
}

/// Runs `portrait field …`.
///
/// # Errors
/// As [`app`].
pub async fn field(conn: &Conn, cmd: FieldCmd) -> anyhow::Result<()> {
    let ctx = Ctx::new(conn)?;
    let op = &ctx.op;
    let hide = matches!(cmd, FieldCmd::Hide { .. });
    match cmd {
        FieldCmd::Add {
            sdkappid,
            name,
            kind,
            max_length,
            read,
            write,
        } => {
            let add = FieldAdd {
                name: full_name(&name),
                kind: match kind {
                    Kind::String => CustomKind::String,
                    Kind::Integer => CustomKind::Integer,
                },
                max_length,
                read: read.map(who),
                write: write.map(who),
            };
            let field = op.add_field(sdkappid, &add).await?;
            ctx.print(&field, |f| show::fields(std::slice::from_ref(f)))
        }
        FieldCmd::List { sdkappid } => {
            let list = op.fields(sdkappid).await?;
            ctx.print(&list, |l| show::fields(&l.fields))
        }
        FieldCmd::Hide { sdkappid, name } | FieldCmd::Show { sdkappid, name } => {
            let patch = FieldPatch {
                hidden: Some(hide),
                ..FieldPatch::default()
            };
            let field = op.update_field(sdkappid, &full_name(&name), &patch).await?;
            ctx.print(&field, |f| show::fields(std::slice::from_ref(f)))
        }
    }
}

/// Runs `portrait account …`.
///
/// # Errors
/// As [`app`].
pub async fn account(conn: &Conn, cmd: AccountCmd) -> anyhow::Result<()> {
    let ctx = Ctx::new(conn)?;
    let op = &ctx.op;
    match cmd {
        AccountCmd::List {
            sdkappid,
            prefix,
            after,
            limit,
            all,
        } => {
            let mut page = op
                .accounts(sdkappid, &prefix, after.as_deref(), limit)
                .await?;
            if all {
                while let Some(next) = page.next.take() {
                    let more = op.accounts(sdkappid, &prefix, Some(&next), limit).await?;
                    page.accounts.extend(more.accounts);
                    page.next = more.next;
                }
            }
            ctx.print(&page, show::accounts)?;
            if let (false, Some(next)) = (ctx.json, &page.next) {
                eprintln!("more: --after {next}");
            }
            Ok(())
        }
        AccountCmd::Show { sdkappid, user_id } => {
            ctx.print(&op.account(sdkappid, &user_id).await?, show::account)
        }
        AccountCmd::Kick { sdkappid, user_id } => {
            op.kick(sdkappid, &user_id).await?;
            ctx.done(format!("kicked {user_id} (app {sdkappid})"));
            Ok(())
        }
        AccountCmd::Delete { sdkappid, user_id } => {
            op.delete_account(sdkappid, &user_id).await?;
            ctx.done(format!("deleted {user_id} (app {sdkappid})"));
            Ok(())
        }
    }
}

/// A webhook to `url` with the default settings.
fn webhook(url: String) -> WebhookSettings {
    WebhookSettings {
        url,
        timeout_ms: None,
        concurrency: None,
        max_pending: None,
        initial_backoff_ms: None,
        max_backoff_ms: None,
        give_up_after_ms: None,
        lease_ms: None,
    }
}

/// `Tag_Profile_Custom_<name>`, unless `name` is already a full tag.
fn full_name(name: &str) -> String {
    if name.starts_with("Tag_Profile_") {
        name.to_owned()
    } else {
        format!("{}{name}", portrait_core::schema::CUSTOM_PREFIX)
    }
}

fn who(roles: Vec<Role>) -> Vec<Who> {
    roles
        .into_iter()
        .map(|r| match r {
            Role::User => Who::User,
            Role::Admin => Who::Admin,
        })
        .collect()
}
