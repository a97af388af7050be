//! The embedded SQLite backend: Portrait's default store, one database file under the data
//! directory (`sqlite://<data_dir>/portrait.db`), no server to run.
//!
//! * **Durability**: WAL journal + `synchronous=FULL`. A write is acknowledged only after its
//!   transaction commits, so it survives `kill -9` and power loss.
//! * **Concurrency**: one writer connection, so writes are serialised in-process and each runs in a
//!   `BEGIN IMMEDIATE` transaction (no lock upgrades, no `SQLITE_BUSY` mid-transaction). A small
//!   pool of `query_only` reader connections serves reads, which WAL lets run during writes.
//! * **Layout**: `migrations/sqlite/` (embedded, run on open). A profile is a compact JSON object
//!   keyed by tag name without the common `Tag_Profile_` prefix; change items are a JSON array of
//!   `[tag, value]` pairs with the same short names.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::{now_ms, AppId, Change, ChangeKind, NewAccount, Profile, Result, Store, StoreError};

/// The embedded migrations (`crates/portrait-store/migrations/sqlite`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections.
const READERS: u32 = 4;
/// Most ids bound in one `in (…)` list; larger batches are split (SQLite's bound-parameter limit
/// is 32766, this keeps statements small).
const MAX_IDS_PER_QUERY: usize = 500;
/// The prefix every tag shares, stripped in storage.
const TAG_PREFIX: &str = "Tag_Profile_";

/// A profile's fields by full tag name.
type Fields = BTreeMap<String, ProfileValue>;

/// The SQLite [`Store`]. Cheap to share behind an `Arc`; [`Store::close`] closes it.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: every write goes through it.
    writer: SqlitePool,
    /// `query_only` connections for reads.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating the file and its parent directories if missing) the database at
    /// `sqlite://PATH` or `sqlite:PATH`, and runs pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a malformed URL, an in-memory database or a database written by a
    /// newer Portrait; [`StoreError::Unavailable`] if the file cannot be opened or migrated.
    pub async fn open(url: &str) -> Result<Self> {
        let path = db_path(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                StoreError::Config(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        if let Err(e) = MIGRATOR.run(&writer).await {
            writer.close().await;
            return Err(migrate_error(e));
        }
        // Opened after the writer has switched the file to WAL, so readers never change the mode.
        let reader = match SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.create_if_missing(false).pragma("query_only", "on"))
            .await
        {
            Ok(reader) => reader,
            Err(e) => {
                writer.close().await;
                return Err(e.into());
            }
        };
        tracing::debug!(path = %path.display(), "opened the sqlite store");
        Ok(Self { writer, reader })
    }

    /// Starts a write transaction on the writer connection, taking the write lock up front.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// The file path of `sqlite://PATH` / `sqlite:PATH`. Query parameters and in-memory databases are
/// refused: Portrait sets the journal and sync modes itself, and a store must be durable.
fn db_path(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Config(format!("store url {url:?}: use sqlite://PATH")))?;
    if rest.contains('?') {
        return Err(StoreError::Config(format!(
            "store url {url:?}: query parameters are not supported (Portrait sets WAL and synchronous=FULL itself)"
        )));
    }
    if rest.is_empty() || rest == ":memory:" {
        return Err(StoreError::Config(format!(
            "store url {url:?}: name a database file, e.g. sqlite://data/portrait.db (in-memory databases are not durable)"
        )));
    }
    Ok(PathBuf::from(rest))
}

fn migrate_error(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Config(format!(
            "the database was migrated by a newer Portrait (migration {v} is unknown to this build); upgrade Portrait"
        )),
        sqlx::migrate::MigrateError::Execute(e) => e.into(),
        e => StoreError::Unavailable(Box::new(e)),
    }
}

/// The column value of an app id: the u64 reinterpreted as i64 (lossless both ways, so every
/// `AppId` is accepted and apps stay distinct).
fn app_key(app: AppId) -> i64 {
    app as i64
}

/// A stored version or timestamp that must not be negative.
fn unsigned(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {n}")))
}

/// `Tag_Profile_IM_Nick` → `IM_Nick`. A name without the prefix (never produced by the schema,
/// but representable in [`Tag::Custom`]) is kept whole behind a `/`, so the mapping is reversible.
fn short_tag(name: &str) -> Cow<'_, str> {
    match name.strip_prefix(TAG_PREFIX) {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Cow::Borrowed(rest),
        _ => Cow::Owned(format!("/{name}")),
    }
}

/// The inverse of [`short_tag`].
fn full_tag(short: &str) -> String {
    match short.strip_prefix('/') {
        Some(whole) => whole.to_owned(),
        None => format!("{TAG_PREFIX}{short}"),
    }
}

fn encode_profile(fields: &Fields) -> Result<String> {
    let short: BTreeMap<Cow<'_, str>, &ProfileValue> =
        fields.iter().map(|(k, v)| (short_tag(k), v)).collect();
    serde_json::to_string(&short)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a profile: {e}")))
}

fn decode_profile(json: &str, user: &str) -> Result<Fields> {
    let short: BTreeMap<String, ProfileValue> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("profile of {user:?}: {e}")))?;
    Ok(short.into_iter().map(|(k, v)| (full_tag(&k), v)).collect())
}

fn encode_items<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a ProfileValue)>,
) -> Result<String> {
    let short: Vec<(Cow<'_, str>, &ProfileValue)> =
        items.into_iter().map(|(k, v)| (short_tag(k), v)).collect();
    serde_json::to_string(&short)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode change items: {e}")))
}

fn decode_items(json: &str, version: i64) -> Result<Vec<(String, ProfileValue)>> {
    let short: Vec<(String, ProfileValue)> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("items of change {version}: {e}")))?;
    Ok(short.into_iter().map(|(k, v)| (full_tag(&k), v)).collect())
}

/// The distinct ids, in first-seen order.
fn distinct<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// `?, ?, …, ?` (`n` placeholders).
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    user_id: String,
    profile: String,
    version: i64,
    updated_at_ms: i64,
}

impl AccountRow {
    fn into_profile(self) -> Result<(String, Profile)> {
        let fields = decode_profile(&self.profile, &self.user_id)?;
        let version = unsigned(self.version, "an account version")?;
        Ok((
            self.user_id,
            Profile {
                fields,
                version,
                updated_at_ms: self.updated_at_ms,
            },
        ))
    }
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    version: i64,
    user_id: String,
    operator: String,
    kind: String,
    items: String,
    at_ms: i64,
}

impl ChangeRow {
    fn into_change(self) -> Result<Change> {
        let kind = ChangeKind::parse(&self.kind).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "change {} has unknown kind {:?}",
                self.version, self.kind
            ))
        })?;
        Ok(Change {
            items: decode_items(&self.items, self.version)?,
            version: unsigned(self.version, "a change version")?,
            user: self.user_id,
            operator: self.operator,
            kind,
            at_ms: self.at_ms,
        })
    }
}

/// Selects `columns` of the app's accounts whose ids are in `ids` (distinct), one statement per
/// [`MAX_IDS_PER_QUERY`] ids.
async fn select_accounts<T>(
    conn: &mut SqliteConnection,
    columns: &str,
    app: AppId,
    ids: &[&str],
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
{
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_IDS_PER_QUERY) {
        let sql = format!(
            "select {columns} from accounts where app_id = ? and user_id in ({})",
            placeholders(chunk.len())
        );
        // Not cached: the text varies with the batch size.
        let mut query = sqlx::query_as::<_, T>(&sql)
            .persistent(false)
            .bind(app_key(app));
        for id in chunk {
            query = query.bind(*id);
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// The ids among `ids` that exist in the app.
async fn existing_ids(
    conn: &mut SqliteConnection,
    app: AppId,
    ids: &[&str],
) -> Result<HashSet<String>> {
    let rows: Vec<(String,)> = select_accounts(conn, "user_id", app, ids).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Reserves `n` (≥ 1) consecutive versions of the app and returns the last; the first is
/// `last - n + 1`.
async fn reserve_versions(conn: &mut SqliteConnection, app: AppId, n: usize) -> Result<u64> {
    let n = i64::try_from(n).map_err(|_| StoreError::Conflict {
        what: format!("{n} changes in one write"),
    })?;
    let last: i64 = sqlx::query_scalar(
        "insert into app_versions (app_id, version) values (?, ?) \
         on conflict (app_id) do update set version = version + excluded.version \
         returning version",
    )
    .bind(app_key(app))
    .bind(n)
    .fetch_one(conn)
    .await?;
    unsigned(last, "an app version")
}

/// One change-log row to insert.
struct NewChange<'a> {
    version: u64,
    user: &'a str,
    kind: ChangeKind,
    items: String,
}

async fn insert_change(
    conn: &mut SqliteConnection,
    app: AppId,
    operator: &str,
    at_ms: i64,
    c: NewChange<'_>,
) -> Result<()> {
    sqlx::query(
        "insert into changes (app_id, version, user_id, operator, kind, items, at_ms) values (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(app_key(app))
    .bind(version_key(c.version)?)
    .bind(c.user)
    .bind(operator)
    .bind(c.kind.as_str())
    .bind(c.items)
    .bind(at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

fn version_key(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Conflict {
        what: format!("version {v} is out of range"),
    })
}

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(skip_all, fields(app = app, accounts = accounts.len()))]
    async fn import_accounts(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        operator: &str,
    ) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let ids = distinct(accounts.iter().map(|a| a.user.as_str()));

        // Every requested account's fields, existing ones as stored.
        let mut profiles: HashMap<String, Fields> = HashMap::with_capacity(ids.len());
        let rows: Vec<AccountRow> = select_accounts(
            &mut tx,
            "user_id, profile, version, updated_at_ms",
            app,
            &ids,
        )
        .await?;
        for row in rows {
            let fields = decode_profile(&row.profile, &row.user_id)?;
            profiles.insert(row.user_id, fields);
        }

        // One change per distinct account that is created or written, in first-seen order; a user
        // listed twice gets the items of both occurrences in one change.
        let mut changed: Vec<(&str, Vec<(&str, &ProfileValue)>)> = Vec::new();
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let given: Vec<Vec<(&str, ProfileValue)>> = accounts
            .iter()
            .map(|a| {
                let mut items = Vec::with_capacity(2);
                if let Some(n) = &a.nick {
                    items.push((StandardTag::Nick.name(), ProfileValue::Str(n.clone())));
                }
                if let Some(f) = &a.face_url {
                    items.push((StandardTag::Image.name(), ProfileValue::Str(f.clone())));
                }
                items
            })
            .collect();
        for (account, items) in accounts.iter().zip(&given) {
            let user = account.user.as_str();
            let exists = profiles.contains_key(user);
            if exists && items.is_empty() {
                continue;
            }
            let fields = profiles.entry(user.to_owned()).or_default();
            for (tag, value) in items {
                fields.insert((*tag).to_owned(), value.clone());
            }
            let i = *slot.entry(user).or_insert_with(|| {
                changed.push((user, Vec::new()));
                changed.len() - 1
            });
            changed[i].1.extend(items.iter().map(|(t, v)| (*t, v)));
        }
        if changed.is_empty() {
            return Ok(()); // dropping `tx` rolls back the (empty) transaction
        }

        let last = reserve_versions(&mut tx, app, changed.len()).await?;
        let first = last + 1 - changed.len() as u64;
        for (version, (user, items)) in (first..).zip(changed) {
            let profile = encode_profile(&profiles[user])?;
            sqlx::query(
                "insert into accounts (app_id, user_id, profile, version, updated_at_ms) values (?, ?, ?, ?, ?) \
                 on conflict (app_id, user_id) do update \
                 set profile = excluded.profile, version = excluded.version, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(app_key(app))
            .bind(user)
            .bind(profile)
            .bind(version_key(version)?)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
            let items = encode_items(items)?;
            insert_change(
                &mut tx,
                app,
                operator,
                at_ms,
                NewChange {
                    version,
                    user,
                    kind: ChangeKind::Import,
                    items,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn delete_accounts(
        &self,
        app: AppId,
        users: &[Identifier],
        operator: &str,
    ) -> Result<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let ids = distinct(users.iter().map(Identifier::as_str));
        let existing = existing_ids(&mut tx, app, &ids).await?;
        let doomed: Vec<&str> = ids
            .into_iter()
            .filter(|id| existing.contains(*id))
            .collect();
        if !doomed.is_empty() {
            let last = reserve_versions(&mut tx, app, doomed.len()).await?;
            let first = last + 1 - doomed.len() as u64;
            for (version, user) in (first..).zip(doomed) {
                sqlx::query("delete from accounts where app_id = ? and user_id = ?")
                    .bind(app_key(app))
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                let items = encode_items([])?;
                insert_change(
                    &mut tx,
                    app,
                    operator,
                    at_ms,
                    NewChange {
                        version,
                        user,
                        kind: ChangeKind::Delete,
                        items,
                    },
                )
                .await?;
            }
            tx.commit().await?;
        }
        Ok(users
            .iter()
            .map(|u| existing.contains(u.as_str()))
            .collect())
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn accounts_exist(&self, app: AppId, users: &[Identifier]) -> Result<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        // A read transaction, so that a batch split over several statements is one snapshot.
        let mut tx = self.reader.begin().await?;
        let existing = existing_ids(&mut tx, app, &ids).await?;
        tx.commit().await?;
        Ok(users
            .iter()
            .map(|u| existing.contains(u.as_str()))
            .collect())
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn kick(&self, app: AppId, user: &Identifier, not_before: u64) -> Result<bool> {
        // Saturating: a `not_before` past year 292 billion revokes everything either way.
        let not_before = i64::try_from(not_before).unwrap_or(i64::MAX);
        // `max`: a later kick with an earlier time never un-revokes a UserSig.
        let done = sqlx::query(
            "update accounts set kicked_before = max(kicked_before, ?) where app_id = ? and user_id = ?",
        )
        .bind(not_before)
        .bind(app_key(app))
        .bind(user.as_str())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select user_id, kicked_before from accounts where app_id = ? and kicked_before > 0 order by user_id",
        )
        .bind(app_key(app))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(user, t)| Ok((user, unsigned(t, "kicked_before")?)))
            .collect()
    }

    #[tracing::instrument(skip_all, fields(app = app, items = items.len()))]
    async fn set_profile(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        operator: &str,
    ) -> Result<u64> {
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let stored: Option<String> =
            sqlx::query_scalar("select profile from accounts where app_id = ? and user_id = ?")
                .bind(app_key(app))
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(stored) = stored else {
            return Err(StoreError::NotFound); // dropping `tx` rolls back
        };
        let mut fields = decode_profile(&stored, user.as_str())?;
        for (tag, value) in items {
            fields.insert(tag.name().to_owned(), value.clone());
        }
        let version = reserve_versions(&mut tx, app, 1).await?;
        sqlx::query("update accounts set profile = ?, version = ?, updated_at_ms = ? where app_id = ? and user_id = ?")
            .bind(encode_profile(&fields)?)
            .bind(version_key(version)?)
            .bind(at_ms)
            .bind(app_key(app))
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        let items = encode_items(items.iter().map(|(t, v)| (t.name(), v)))?;
        let change = NewChange {
            version,
            user: user.as_str(),
            kind: ChangeKind::Set,
            items,
        };
        insert_change(&mut tx, app, operator, at_ms, change).await?;
        tx.commit().await?;
        Ok(version)
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn get_profiles(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Option<Profile>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        let mut tx = self.reader.begin().await?;
        let rows: Vec<AccountRow> = select_accounts(
            &mut tx,
            "user_id, profile, version, updated_at_ms",
            app,
            &ids,
        )
        .await?;
        tx.commit().await?;
        let found: HashMap<String, Profile> = rows
            .into_iter()
            .map(AccountRow::into_profile)
            .collect::<Result<_>>()?;
        Ok(users
            .iter()
            .map(|u| found.get(u.as_str()).cloned())
            .collect())
    }

    #[tracing::instrument(skip_all, fields(app = app, since = since, limit = limit))]
    async fn changes_since(&self, app: AppId, since: u64, limit: usize) -> Result<Vec<Change>> {
        let Ok(since) = i64::try_from(since) else {
            return Ok(Vec::new()); // no version is that large
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<ChangeRow> = sqlx::query_as(
            "select version, user_id, operator, kind, items, at_ms from changes \
             where app_id = ? and version > ? order by version limit ?",
        )
        .bind(app_key(app))
        .bind(since)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(ChangeRow::into_change).collect()
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn current_version(&self, app: AppId) -> Result<u64> {
        let version: Option<i64> =
            sqlx::query_scalar("select version from app_versions where app_id = ?")
                .bind(app_key(app))
                .fetch_optional(&self.reader)
                .await?;
        version.map_or(Ok(0), |v| unsigned(v, "an app version"))
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.reader).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn close(&self) {
        self.reader.close().await;
        // Last: closing the last connection checkpoints the WAL into the main file.
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_shorten_and_expand_losslessly() {
        for name in [
            "Tag_Profile_IM_Nick",
            "Tag_Profile_Custom_Hobby",
            "Tag_Profile_",
            "Tag_Profile_/odd",
            "NoPrefix",
            "/slash",
            "",
        ] {
            assert_eq!(full_tag(&short_tag(name)), name, "{name:?}");
        }
        assert_eq!(short_tag("Tag_Profile_IM_Nick"), "IM_Nick");
        assert_eq!(short_tag("Tag_Profile_Custom_Hobby"), "Custom_Hobby");
    }

    #[test]
    fn profiles_are_stored_as_compact_json_with_short_tags() {
        let mut fields = Fields::new();
        fields.insert(
            "Tag_Profile_IM_Nick".into(),
            ProfileValue::Str("Ann".into()),
        );
        fields.insert(
            "Tag_Profile_Custom_Score".into(),
            ProfileValue::Int(u64::MAX),
        );
        let json = encode_profile(&fields).unwrap();
        assert_eq!(
            json,
            r#"{"Custom_Score":18446744073709551615,"IM_Nick":"Ann"}"#
        );
        assert_eq!(decode_profile(&json, "u").unwrap(), fields);
        assert!(matches!(
            decode_profile("[1]", "u"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn store_urls_name_a_file() {
        assert_eq!(
            db_path("sqlite://data/portrait.db").unwrap(),
            PathBuf::from("data/portrait.db")
        );
        assert_eq!(
            db_path("sqlite:///var/lib/p.db").unwrap(),
            PathBuf::from("/var/lib/p.db")
        );
        assert_eq!(db_path("sqlite:p.db").unwrap(), PathBuf::from("p.db"));
        for bad in [
            "sqlite::memory:",
            "sqlite://",
            "sqlite://p.db?mode=ro",
            "postgres://x",
        ] {
            assert!(matches!(db_path(bad), Err(StoreError::Config(_))), "{bad}");
        }
    }

    #[tokio::test]
    async fn opened_database_is_durable_and_readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("pragma journal_mode")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("pragma synchronous")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query_scalar("pragma foreign_keys")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("pragma busy_timeout")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
        let write = sqlx::query("insert into app_versions (app_id, version) values (1, 1)")
            .execute(&store.reader)
            .await;
        assert!(write.is_err(), "reader connections are query_only");
        store.close().await;
    }
}
