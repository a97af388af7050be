-- Portrait's initial PostgreSQL schema: the same tables and the same column contents as the SQLite
-- backend (migrations/sqlite/0001_init.sql + 0002_cursors.sql), so data moves between the two
-- unchanged. Never edit a migration once merged; add 0002_….sql instead.
--
-- Ids: `app_id` holds the u64 sdkappid reinterpreted as a signed 64-bit integer (lossless), and
-- every version is per app, strictly increasing from 1.
--
-- Text, not jsonb, for the JSON columns: jsonb cannot hold the string "\u0000" (a NUL inside a
-- profile string is legal), and Portrait never queries inside these values. User ids sort
-- bytewise (`collate "C"`), as in SQLite, whatever the database's locale.

-- One row per account. `profile` is a JSON object of the fields that have been set, keyed by tag
-- name without the common `Tag_Profile_` prefix (`IM_Nick`, `Custom_Hobby`); values are JSON
-- numbers (u64) or strings. `version` / `updated_at_ms` describe the account's last change.
-- `kicked_before` (Unix seconds, 0 = never kicked): UserSigs minted at or before it are revoked.
create table accounts (
    app_id        bigint not null,
    user_id       text   collate "C" not null,
    profile       text   not null,
    version       bigint not null check (version >= 0),
    updated_at_ms bigint not null,
    kicked_before bigint not null default 0,
    primary key (app_id, user_id)
);

-- `kicks(app)` is read at start-up; only kicked accounts are indexed.
create index accounts_kicked on accounts (app_id) where kicked_before > 0;

-- The latest version of each app that has ever been written. Every write transaction locks its
-- app's row first and keeps the lock until COMMIT: that serialises the writes of one app, so its
-- versions are handed out without gaps and become visible in version order.
create table app_versions (
    app_id  bigint primary key,
    version bigint not null check (version >= 0)
);

-- The change log (outbox): one row per changed account per write, in the same transaction as the
-- data. `items` is a JSON array of [tag, value] pairs (tags shortened as in `accounts.profile`).
create table changes (
    app_id   bigint not null,
    version  bigint not null,
    user_id  text   collate "C" not null,
    operator text   not null,
    kind     text   not null check (kind in ('import', 'set', 'delete')),
    items    text   not null,
    at_ms    bigint not null,
    primary key (app_id, version)
);

-- Named positions in an app's change log, e.g. `webhook`: every change up to `version` has been
-- delivered to the app's callback URL.
create table cursors (
    app_id  bigint not null,
    name    text   collate "C" not null,
    version bigint not null,
    primary key (app_id, name)
);
