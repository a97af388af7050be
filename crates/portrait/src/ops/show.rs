//! The human-readable answers of the operator commands: one function per answer type, each
//! returning the text to print (ending in a newline). `--json` bypasses these.
//!
//! What must not live here: calls to the server.

use std::fmt::Write;

use portrait_client::operator::{
    AccountList, AccountView, AppCreated, AppKey, AppList, AppMoved, AppSource, AppView,
    CustomKind, FieldView, WebhookState, Who,
};

/// `app create`: the app, then its key.
pub fn created(c: &AppCreated) -> String {
    format!(
        "created app {}\n{}secret key: {}\n",
        c.app.sdkappid,
        app(&c.app),
        c.key
    )
}

/// `app list`: a table, one app per line.
pub fn apps(list: &AppList) -> String {
    let mut out = format!(
        "{:<12} {:<6} {:<9} {:>8} {:>6}  ADMINS\n",
        "SDKAPPID", "SOURCE", "STATE", "REVISION", "FIELDS"
    );
    for a in &list.apps {
        let _ = writeln!(
            out,
            "{:<12} {:<6} {:<9} {:>8} {:>6}  {}",
            a.sdkappid,
            source(a.source),
            state(a.disabled),
            a.revision,
            a.custom_fields.len(),
            a.admins.join(",")
        );
    }
    out
}

/// `app show` and the answers of changes to an app: one setting per line.
pub fn app(a: &AppView) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<24} {value}");
    };
    line("sdkappid", a.sdkappid.to_string());
    line("source", source(a.source).to_owned());
    line("state", state(a.disabled).to_owned());
    line("revision", a.revision.to_string());
    if let Some(shard) = &a.shard {
        line("shard", shard.clone());
    }
    line("admins", a.admins.join(", "));
    line("sensitive words", a.sensitive_words.len().to_string());
    let limits = if a.rate_limits.enabled { "on" } else { "off" };
    line("rate limits", limits.to_owned());
    let c = &a.client_rate_limits;
    line(
        "client rate limits",
        format!(
            "user {}/{} app {}/{} reads/writes per second",
            c.user_reads, c.user_writes, c.app_reads, c.app_writes
        ),
    );
    line(
        "usersig clock skew",
        format!("{} s", a.usersig_clock_skew_secs),
    );
    line(
        "webhook",
        a.webhook.as_ref().map_or("-".to_owned(), |w| w.url.clone()),
    );
    if let Some(until) = a.previous_key_valid_until {
        line("previous key valid until", utc(until.saturating_mul(1000)));
    }
    let names: Vec<&str> = a.custom_fields.iter().map(|f| f.name.as_str()).collect();
    line(
        "custom fields",
        if names.is_empty() {
            "-".to_owned()
        } else {
            names.join(", ")
        },
    );
    out
}

/// `app move`.
pub fn moved(m: &AppMoved) -> String {
    format!(
        "app {} moved from shard {} to {} at version {}: {} accounts copied, {} changes caught up, \
         {} accounts verified; writes waited {} ms, the move took {} ms\n",
        m.sdkappid,
        m.from,
        m.to,
        m.version,
        m.copied_accounts,
        m.caught_up_changes,
        m.verified_accounts,
        m.paused_ms,
        m.took_ms
    )
}

/// `app key` and `app rotate-key`.
pub fn key(k: &AppKey) -> String {
    let mut out = format!("{}\n", k.key);
    if let Some(until) = k.previous_key_valid_until {
        let _ = writeln!(
            out,
            "(the previous key verifies until {})",
            utc(until.saturating_mul(1000))
        );
    }
    out
}

/// `app webhook`.
pub fn webhook(w: &WebhookState) -> String {
    if !w.configured {
        return "no webhook configured\n".to_owned();
    }
    let mut out = format!(
        "cursor {}  head {}  lag {}  delivering here: {}\n",
        w.cursor,
        w.head,
        w.lag,
        if w.delivering_here { "yes" } else { "no" }
    );
    if w.recent_failures.is_empty() {
        out.push_str("no recent failures\n");
    }
    for f in &w.recent_failures {
        let _ = writeln!(
            out,
            "{}  {} v{}: {}",
            utc(f.at_ms),
            f.user_id,
            f.version,
            f.error
        );
    }
    out
}

/// `field list` and the answers of changes to a field: a table.
pub fn fields(fields: &[FieldView]) -> String {
    let mut out = format!(
        "{:<36} {:<7} {:>6} {:<10} {:<10} HIDDEN\n",
        "NAME", "TYPE", "MAX", "READ", "WRITE"
    );
    for f in fields {
        let kind = match f.kind {
            CustomKind::String => "string",
            CustomKind::Integer => "integer",
        };
        let _ = writeln!(
            out,
            "{:<36} {:<7} {:>6} {:<10} {:<10} {}",
            f.name,
            kind,
            f.max_length,
            who(&f.read),
            who(&f.write),
            if f.hidden { "yes" } else { "no" }
        );
    }
    out
}

/// `account list`: one UserID per line (the `next` cursor is printed on stderr by the caller).
pub fn accounts(list: &AccountList) -> String {
    list.accounts.iter().map(|u| format!("{u}\n")).collect()
}

/// `account show`: the profile, then the changes, newest first.
pub fn account(a: &AccountView) -> String {
    let mut out = format!("user_id  {}\nversion  {}\n", a.user_id, a.version);
    let kicked = a.kicked_until.map_or("no".to_owned(), |t| {
        format!("UserSigs up to {}", utc(t * 1000))
    });
    let _ = writeln!(out, "kicked   {kicked}");
    out.push_str("profile\n");
    for (tag, value) in &a.profile {
        let _ = writeln!(out, "  {tag:<36} {value}");
    }
    out.push_str("changes (newest first)\n");
    for c in &a.changes {
        let from = c
            .client_ip
            .as_deref()
            .map_or(String::new(), |ip| format!(" from {ip}"));
        let _ = writeln!(
            out,
            "  v{:<8} {}  {:<6} by {}{from}",
            c.version,
            utc(c.at_ms),
            c.kind,
            c.operator
        );
        for (tag, value) in &c.items {
            let _ = writeln!(out, "      {tag} = {value}");
        }
    }
    out
}

fn source(s: AppSource) -> &'static str {
    match s {
        AppSource::File => "file",
        AppSource::Store => "store",
    }
}

fn state(disabled: bool) -> &'static str {
    if disabled {
        "disabled"
    } else {
        "enabled"
    }
}

fn who(list: &[Who]) -> String {
    let names: Vec<&str> = list
        .iter()
        .map(|w| match w {
            Who::User => "user",
            Who::Admin => "admin",
        })
        .collect();
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(",")
    }
}

/// Unix milliseconds as `YYYY-MM-DD hh:mm:ss UTC` (the proleptic Gregorian calendar, from
/// Howard Hinnant's `civil_from_days`).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_unix_milliseconds() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_428_799_999), "2026-12-04 23:59:59 UTC");
    }
}
