-- Catch-up walks each account's chain of changes instead of the index `changes_by_user` (the same
-- change as migrations/sqlite/0005_change_chains.sql, which says why).
--
-- * `changes.prev_version`: the version of the same account's previous change (0 if none).
-- * The newest change of an account is `accounts.version`; of a deleted account its delete, in
--   `deleted_accounts`.
--
-- Rows written before this migration get their chain here; on a large log this rewrites the
-- `changes` table once (a slow first start).
alter table changes add column prev_version bigint not null default 0;

update changes as c set prev_version = p.prev
from (
    select app_id, version,
           coalesce(lag(version) over (partition by app_id, user_id order by version), 0) as prev
    from changes
) as p
where c.app_id = p.app_id and c.version = p.version and p.prev > 0;

create table deleted_accounts (
    app_id  bigint not null,
    user_id text   collate "C" not null,
    version bigint not null,
    primary key (app_id, user_id)
);

insert into deleted_accounts (app_id, user_id, version)
    select c.app_id, c.user_id, max(c.version) from changes as c
    where not exists (
        select 1 from accounts as a where a.app_id = c.app_id and a.user_id = c.user_id)
    group by c.app_id, c.user_id;

drop index changes_by_user;
