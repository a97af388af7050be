-- A catch-up of a few accounts (`Store::changes_of`) walks each account's chain of changes
-- through primary-key lookups instead of a second index on the log: the index
-- `changes_by_user (app_id, user_id, version)` cost every write an insert into a second B-tree
-- at a random place (about a fifth of the write rate, BENCHMARKS.md).
--
-- * `changes.prev_version`: the version of the same account's previous change (0 if none).
-- * The newest change of an account is `accounts.version`; of a deleted account (no row in
--   `accounts`) its delete, in `deleted_accounts`, so that the chain goes on through a delete and
--   a re-import. A row there goes when the account is imported again or its change is pruned.
--
-- Rows written before this migration get their chain here, from the index, which then goes.
-- On a large log this rewrites the whole `changes` table once (a slow first start).
alter table changes add column prev_version integer not null default 0;

update changes set prev_version = p.prev
from (
    select app_id, version,
           lag(version, 1, 0) over (partition by app_id, user_id order by version) as prev
    from changes
) as p
where changes.app_id = p.app_id and changes.version = p.version and p.prev > 0;

create table deleted_accounts (
    app_id  integer not null,
    user_id text    not null,
    version integer not null,
    primary key (app_id, user_id)
) strict, without rowid;

insert into deleted_accounts (app_id, user_id, version)
    select c.app_id, c.user_id, max(c.version) from changes as c
    where not exists (
        select 1 from accounts as a where a.app_id = c.app_id and a.user_id = c.user_id)
    group by c.app_id, c.user_id;

drop index changes_by_user;
