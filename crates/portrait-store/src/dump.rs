//! Moving a store's data to another store, with every version preserved: [`migrate`] copies
//! straight from one store to another; [`export`] writes a JSON Lines dump and [`import`] reads
//! one back. What the `portrait export | import | migrate` commands run.
//!
//! Each app moves as one [`AppDump`] (read from one snapshot, written in one transaction), so an
//! app is held in memory while it moves. The target must hold nothing for the apps that move;
//! that is checked for every app before anything is written. Stop the nodes writing to the
//! source first: writes made after an app was read are not carried over.
//!
//! The dump format (version 3), one JSON object per line, each with a `type`:
//!
//! ```text
//! {"type":"header","format":"portrait-dump","version":3}
//! {"type":"app","app":1400000001,"version":42}
//! {"type":"account","user":"alice","fields":{"Tag_Profile_IM_Nick":"Alice"},"version":41,"updated_at_ms":1700000000000}
//! {"type":"change","version":41,"user":"alice","operator":"admin","client_ip":"203.0.113.7","kind":"set","items":[["Tag_Profile_IM_Nick","Alice"]],"at_ms":1700000000000}
//! {"type":"cursor","name":"webhook","version":40}
//! {"type":"kick","user":"bob","not_before":1700000000}
//! {"type":"end","apps":1,"accounts":1,"changes":1,"cursors":1,"kicks":1}
//! ```
//!
//! Records after an `app` line belong to that app. Tags are full names; integer values are JSON
//! numbers up to `u64::MAX`. The `end` line carries the totals, so a truncated dump is refused
//! rather than half imported. A `kick` may name an account that no longer exists (a kick outlives
//! its account). A change's `client_ip` (the caller's address) is left out when unknown; version 2
//! dumps have none. Version 1 dumps (no `kick` lines; each account's kick as its `kicked_before`,
//! 0 = none) are still read.
//!
//! Not here: opening stores by URL or printing (that is the binary's job).

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use portrait_core::ProfileValue;
use serde::{Deserialize, Serialize};

use crate::{AppDump, AppId, Change, ChangeKind, Profile, Store, StoreError, StoredAccount};

/// The `format` of a dump's header line.
pub const FORMAT: &str = "portrait-dump";
/// The dump format version this build writes (it reads this one and versions 1 and 2).
pub const FORMAT_VERSION: u32 = 3;

/// Why a move failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Reading from or writing to a store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target store already holds some of the apps to move; nothing was written.
    #[error(
        "the target store already holds app(s) {0:?}; move apps only into a store that holds none of them"
    )]
    TargetNotEmpty(Vec<AppId>),
    /// Writing the dump failed.
    #[error("writing the dump: {0}")]
    Write(#[source] io::Error),
    /// Reading the dump failed.
    #[error("reading the dump: {0}")]
    Read(#[source] io::Error),
    /// The dump is malformed; nothing was written.
    #[error("dump line {line}: {message}")]
    Format {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// After [`migrate`], an app reads back differently from the target than from the source.
    #[error("app {0} reads back differently from the target store after the move")]
    Mismatch(AppId),
}

/// What moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Apps.
    pub apps: u64,
    /// Accounts.
    pub accounts: u64,
    /// Change-log entries.
    pub changes: u64,
    /// Named cursors.
    pub cursors: u64,
    /// Kicks (absent, i.e. 0, in version 1 dumps).
    #[serde(default)]
    pub kicks: u64,
}

impl Summary {
    fn add(&mut self, dump: &AppDump) {
        self.apps += 1;
        self.accounts += dump.accounts.len() as u64;
        self.changes += dump.changes.len() as u64;
        self.cursors += dump.cursors.len() as u64;
        self.kicks += dump.kicks.len() as u64;
    }
}

/// One line of a dump.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header {
        format: String,
        version: u32,
    },
    App {
        app: AppId,
        version: u64,
    },
    Account {
        user: String,
        fields: BTreeMap<String, ProfileValue>,
        version: u64,
        updated_at_ms: i64,
        /// Version 1 only: the account's kick (0 = none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kicked_before: Option<u64>,
    },
    Change {
        version: u64,
        user: String,
        operator: String,
        /// The caller's address (absent in version 2 dumps, and when unknown).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        client_ip: String,
        kind: String,
        items: Vec<(String, ProfileValue)>,
        at_ms: i64,
    },
    Cursor {
        name: String,
        version: u64,
    },
    Kick {
        user: String,
        not_before: u64,
    },
    End(Summary),
}

/// The apps to move: `only` if given (in that order, duplicates dropped), else every app of
/// `store`.
async fn chosen_apps(store: &dyn Store, only: Option<&[AppId]>) -> Result<Vec<AppId>, DumpError> {
    Ok(match only {
        Some(apps) => {
            let mut seen = std::collections::HashSet::new();
            apps.iter().copied().filter(|a| seen.insert(*a)).collect()
        }
        None => store.apps().await?,
    })
}

/// Fails with [`DumpError::TargetNotEmpty`] if `target` holds any of `apps`.
async fn check_target(target: &dyn Store, apps: &[AppId]) -> Result<(), DumpError> {
    let held = target.apps().await?;
    let clash: Vec<AppId> = apps.iter().copied().filter(|a| held.contains(a)).collect();
    if clash.is_empty() {
        Ok(())
    } else {
        Err(DumpError::TargetNotEmpty(clash))
    }
}

/// Copies `apps` (default: every app) from `from` to `to`, then reads each back from `to` and
/// compares it with what was read from `from`.
///
/// # Errors
/// [`DumpError::TargetNotEmpty`] (before anything is written), store failures, or
/// [`DumpError::Mismatch`]. Apps moved before a failure stay moved.
pub async fn migrate(
    from: &dyn Store,
    to: &dyn Store,
    apps: Option<&[AppId]>,
) -> Result<Summary, DumpError> {
    let apps = chosen_apps(from, apps).await?;
    check_target(to, &apps).await?;
    let mut summary = Summary::default();
    for app in apps {
        let dump = from.dump_app(app).await?;
        if dump.is_empty() {
            continue;
        }
        summary.add(&dump);
        to.restore_app(dump.clone()).await?;
        if to.dump_app(app).await? != dump {
            return Err(DumpError::Mismatch(app));
        }
    }
    Ok(summary)
}

/// Writes `apps` (default: every app) of `store` to `out` as a dump (see the module docs).
///
/// # Errors
/// Store failures and [`DumpError::Write`].
pub async fn export(
    store: &dyn Store,
    apps: Option<&[AppId]>,
    out: &mut dyn Write,
) -> Result<Summary, DumpError> {
    let apps = chosen_apps(store, apps).await?;
    let mut summary = Summary::default();
    write_line(
        out,
        &Line::Header {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
        },
    )?;
    for app in apps {
        let dump = store.dump_app(app).await?;
        if dump.is_empty() {
            continue;
        }
        summary.add(&dump);
        write_line(
            out,
            &Line::App {
                app,
                version: dump.version,
            },
        )?;
        for a in dump.accounts {
            write_line(
                out,
                &Line::Account {
                    user: a.user,
                    fields: a.profile.fields,
                    version: a.profile.version,
                    updated_at_ms: a.profile.updated_at_ms,
                    kicked_before: None,
                },
            )?;
        }
        for c in dump.changes {
            write_line(
                out,
                &Line::Change {
                    version: c.version,
                    user: c.user,
                    operator: c.operator,
                    client_ip: c.client_ip,
                    kind: c.kind.as_str().to_owned(),
                    items: c.items,
                    at_ms: c.at_ms,
                },
            )?;
        }
        for (name, version) in dump.cursors {
            write_line(out, &Line::Cursor { name, version })?;
        }
        for (user, not_before) in dump.kicks {
            write_line(out, &Line::Kick { user, not_before })?;
        }
    }
    write_line(out, &Line::End(summary))?;
    out.flush().map_err(DumpError::Write)?;
    Ok(summary)
}

fn write_line(out: &mut dyn Write, line: &Line) -> Result<(), DumpError> {
    serde_json::to_writer(&mut *out, line).map_err(|e| DumpError::Write(e.into()))?;
    out.write_all(b"\n").map_err(DumpError::Write)
}

/// Reads a whole dump from `input`, checks it (format, structure, totals, and each app with
/// [`AppDump::check`]), checks that `store` holds none of its apps, then restores it app by app.
///
/// # Errors
/// [`DumpError::Read`], [`DumpError::Format`] and [`DumpError::TargetNotEmpty`] before anything
/// is written; store failures (apps restored before one stay restored).
pub async fn import(store: &dyn Store, input: &mut dyn BufRead) -> Result<Summary, DumpError> {
    let dumps = parse(input)?;
    let apps: Vec<AppId> = dumps.iter().map(|d| d.app).collect();
    check_target(store, &apps).await?;
    let mut summary = Summary::default();
    for dump in dumps {
        summary.add(&dump);
        store.restore_app(dump).await?;
    }
    Ok(summary)
}

/// Parses and checks a whole dump.
fn parse(input: &mut dyn BufRead) -> Result<Vec<AppDump>, DumpError> {
    let mut dumps: Vec<AppDump> = Vec::new();
    let mut totals = Summary::default();
    let mut header: Option<u32> = None;
    let mut end: Option<(usize, Summary)> = None;
    let mut n = 0;
    let mut text = String::new();
    loop {
        text.clear();
        if input.read_line(&mut text).map_err(DumpError::Read)? == 0 {
            break;
        }
        n += 1;
        let bad = |message: String| DumpError::Format { line: n, message };
        if text.trim().is_empty() {
            continue;
        }
        if end.is_some() {
            return Err(bad("data after the end line".into()));
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if header.is_none() {
            match line {
                Line::Header { format, version } if format == FORMAT => {
                    if !(1..=FORMAT_VERSION).contains(&version) {
                        return Err(bad(format!(
                            "dump format version {version}; this build reads versions 1 to {FORMAT_VERSION}"
                        )));
                    }
                    header = Some(version);
                    continue;
                }
                _ => return Err(bad(format!("not a {FORMAT} (no header line)"))),
            }
        }
        if let Line::App { app, version } = line {
            if dumps.iter().any(|d| d.app == app) {
                return Err(bad(format!("app {app} appears twice")));
            }
            dumps.push(AppDump {
                app,
                version,
                ..AppDump::default()
            });
            continue;
        }
        if let Line::End(summary) = line {
            end = Some((n, summary));
            continue;
        }
        let Some(dump) = dumps.last_mut() else {
            return Err(bad("a record before the first app line".into()));
        };
        match line {
            Line::Account {
                user,
                fields,
                version,
                updated_at_ms,
                kicked_before,
            } => {
                if let Some(not_before) = kicked_before.filter(|t| *t > 0) {
                    dump.kicks.push((user.clone(), not_before));
                }
                dump.accounts.push(StoredAccount {
                    user,
                    profile: Profile {
                        fields,
                        version,
                        updated_at_ms,
                    },
                });
            }
            Line::Change {
                version,
                user,
                operator,
                client_ip,
                kind,
                items,
                at_ms,
            } => {
                let kind = ChangeKind::parse(&kind)
                    .ok_or_else(|| bad(format!("unknown change kind {kind:?}")))?;
                dump.changes.push(Change {
                    version,
                    user,
                    operator,
                    client_ip,
                    kind,
                    items,
                    at_ms,
                });
            }
            Line::Cursor { name, version } => dump.cursors.push((name, version)),
            Line::Kick { user, not_before } => dump.kicks.push((user, not_before)),
            Line::Header { .. } => return Err(bad("a second header line".into())),
            Line::App { .. } | Line::End(_) => unreachable!("handled above"),
        }
    }
    let Some(format_version) = header else {
        return Err(DumpError::Format {
            line: n,
            message: "the dump is empty".into(),
        });
    };
    let Some((end_line, mut expected)) = end else {
        return Err(DumpError::Format {
            line: n,
            message: "no end line: the dump is truncated".into(),
        });
    };
    for dump in &dumps {
        totals.add(dump);
        dump.check().map_err(|e| DumpError::Format {
            line: end_line,
            message: e.to_string(),
        })?;
    }
    if format_version == 1 {
        expected.kicks = totals.kicks; // counted with the accounts then
    }
    if totals != expected {
        return Err(DumpError::Format {
            line: end_line,
            message: format!("the end line promises {expected:?}, the dump holds {totals:?}"),
        });
    }
    Ok(dumps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        [
            r#"{"type":"header","format":"portrait-dump","version":1}"#,
            r#"{"type":"app","app":18446744073709551615,"version":2}"#,
            r#"{"type":"account","user":"alice","fields":{"Tag_Profile_IM_Level":18446744073709551615,"Tag_Profile_IM_Nick":"A\u0000"},"version":2,"updated_at_ms":5,"kicked_before":7}"#,
            r#"{"type":"change","version":1,"user":"alice","operator":"admin","kind":"import","items":[],"at_ms":4}"#,
            r#"{"type":"change","version":2,"user":"alice","operator":"alice","kind":"set","items":[["Tag_Profile_IM_Nick","A\u0000"]],"at_ms":5}"#,
            r#"{"type":"cursor","name":"webhook","version":1}"#,
            r#"{"type":"end","apps":1,"accounts":1,"changes":2,"cursors":1}"#,
        ]
        .join("\n")
    }

    #[test]
    fn a_dump_parses_into_app_dumps() {
        let dumps = parse(&mut sample().as_bytes()).unwrap();
        assert_eq!(dumps.len(), 1);
        let d = &dumps[0];
        assert_eq!((d.app, d.version), (u64::MAX, 2));
        assert_eq!(
            d.accounts[0].profile.fields["Tag_Profile_IM_Level"],
            ProfileValue::Int(u64::MAX)
        );
        assert_eq!(
            d.accounts[0].profile.fields["Tag_Profile_IM_Nick"],
            ProfileValue::Str("A\0".into())
        );
        assert_eq!(d.kicks, vec![("alice".to_owned(), 7)], "a v1 kick");
        assert_eq!(d.changes[1].kind, ChangeKind::Set);
        assert_eq!(d.cursors, vec![("webhook".to_owned(), 1)]);
        assert_eq!(d.changes[1].client_ip, "", "older dumps carry no address");
    }

    #[test]
    fn version_3_dumps_carry_the_callers_address() {
        let text = [
            r#"{"type":"header","format":"portrait-dump","version":3}"#,
            r#"{"type":"app","app":7,"version":2}"#,
            r#"{"type":"change","version":1,"user":"a","operator":"admin","client_ip":"203.0.113.7","kind":"import","items":[],"at_ms":4}"#,
            r#"{"type":"change","version":2,"user":"a","operator":"admin","kind":"delete","items":[],"at_ms":5}"#,
            r#"{"type":"end","apps":1,"accounts":0,"changes":2,"cursors":0,"kicks":0}"#,
        ]
        .join("\n");
        let dumps = parse(&mut text.as_bytes()).unwrap();
        let ips: Vec<&str> = dumps[0]
            .changes
            .iter()
            .map(|c| c.client_ip.as_str())
            .collect();
        assert_eq!(ips, ["203.0.113.7", ""]);
        let mut out = Vec::new();
        for c in &dumps[0].changes {
            let line = Line::Change {
                version: c.version,
                user: c.user.clone(),
                operator: c.operator.clone(),
                client_ip: c.client_ip.clone(),
                kind: c.kind.as_str().to_owned(),
                items: c.items.clone(),
                at_ms: c.at_ms,
            };
            write_line(&mut out, &line).unwrap();
        }
        let written = String::from_utf8(out).unwrap();
        assert!(
            written.contains(r#""client_ip":"203.0.113.7""#),
            "{written}"
        );
        assert_eq!(
            written.matches("client_ip").count(),
            1,
            "an unknown one is left out"
        );
    }

    #[test]
    fn version_2_dumps_carry_kicks_of_deleted_accounts_too() {
        let text = [
            r#"{"type":"header","format":"portrait-dump","version":2}"#,
            r#"{"type":"app","app":7,"version":2}"#,
            r#"{"type":"account","user":"alice","fields":{},"version":1,"updated_at_ms":5}"#,
            r#"{"type":"kick","user":"alice","not_before":9}"#,
            r#"{"type":"kick","user":"gone","not_before":8}"#,
            r#"{"type":"end","apps":1,"accounts":1,"changes":0,"cursors":0,"kicks":2}"#,
        ]
        .join("\n");
        let dumps = parse(&mut text.as_bytes()).unwrap();
        assert_eq!(
            dumps[0].kicks,
            vec![("alice".to_owned(), 9), ("gone".to_owned(), 8)]
        );
        let short = text.replace(r#""kicks":2"#, r#""kicks":1"#);
        let err = parse(&mut short.as_bytes()).expect_err("kicks are counted");
        assert!(err.to_string().contains("promises"), "{err}");
        let twice = text.replace(r#""gone","not_before":8"#, r#""alice","not_before":8"#);
        let err = parse(&mut twice.as_bytes()).expect_err("one kick per account");
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn malformed_dumps_are_refused_saying_why() {
        let good = sample();
        let lines: Vec<&str> = good.lines().collect();
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "the dump is empty"),
            (lines[1..].join("\n"), "no header line"),
            (lines[..6].join("\n"), "truncated"),
            (good.replace(r#""changes":2"#, r#""changes":3"#), "promises"),
            (
                good.replace(r#""kind":"set""#, r#""kind":"upsert""#),
                "unknown change kind",
            ),
            (
                good.replace(
                    r#""format":"portrait-dump","version":1"#,
                    r#""format":"portrait-dump","version":4"#,
                ),
                "format version 4",
            ),
            (
                [lines[0], lines[2], lines[6]].join("\n"),
                "before the first app line",
            ),
            (format!("{good}\n{}", lines[1]), "after the end line"),
            (
                good.replace(
                    r#""user":"alice","fields""#,
                    r#""user":"al\u0001ice","fields""#,
                ),
                "account",
            ),
            (
                good.replace(r#""version":1,"user""#, r#""version":3,"user""#),
                "out of order",
            ),
            (
                good.replace(r#""at_ms":4}"#, r#""at_ms":4,"extra":1}"#),
                "extra",
            ),
        ];
        for (text, says) in cases {
            let err = parse(&mut text.as_bytes()).expect_err(says);
            assert!(matches!(err, DumpError::Format { .. }), "{says}: {err:?}");
            assert!(err.to_string().contains(says), "{says}: {err}");
        }
        assert!(
            parse(&mut good.as_bytes()).is_ok(),
            "the sample itself is fine"
        );
    }
}
