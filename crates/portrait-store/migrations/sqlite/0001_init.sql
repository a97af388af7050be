-- Portrait's initial SQLite schema. Never edit a migration once merged; add 0002_….sql instead.
--
-- Ids: `app_id` holds the u64 sdkappid reinterpreted as a signed 64-bit integer (lossless), and
-- every version is per app, strictly increasing from 1.

-- One row per account. `profile` is a JSON object of the fields that have been set, keyed by tag
-- name without the common `Tag_Profile_` prefix (`IM_Nick`, `Custom_Hobby`); values are JSON
-- numbers (u64) or strings. `version` / `updated_at_ms` describe the account's last change.
-- `kicked_before` (Unix seconds, 0 = never kicked): UserSigs minted at or before it are revoked.
create table accounts (
    app_id        integer not null,
    user_id       text    not null,
    profile       text    not null,
    version       integer not null,
    updated_at_ms integer not null,
    kicked_before integer not null default 0,
    primary key (app_id, user_id)
) strict, without rowid;

-- `kicks(app)` is read at start-up; only kicked accounts are indexed.
create index accounts_kicked on accounts (app_id) where kicked_before > 0;

-- The latest version of each app that has ever been written.
create table app_versions (
    app_id  integer primary key,
    version integer not null
) strict;

-- The change log (outbox): one row per changed account per write, in the same transaction as the
-- data. `items` is a JSON array of [tag, value] pairs (tags shortened as in `accounts.profile`).
create table changes (
    app_id   integer not null,
    version  integer not null,
    user_id  text    not null,
    operator text    not null,
    kind     text    not null check (kind in ('import', 'set', 'delete')),
    items    text    not null,
    at_ms    integer not null,
    primary key (app_id, version)
) strict, without rowid;
