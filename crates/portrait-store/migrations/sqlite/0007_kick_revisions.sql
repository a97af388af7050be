-- Each app's kicks revision (the same change as migrations/postgres/0007_kick_revisions.sql):
-- `app_versions.kicks` changes in the same transaction as every write to the app's `kicks` (a
-- kick, a restore), so a node learns from one read of `app_versions` for every app
-- (`Store::app_heads`) which apps have new changes and which new kicks, without reading each
-- app's log and kicks. Apps with kicks already start at revision 1.
alter table app_versions add column kicks integer not null default 0;

insert into app_versions (app_id, version, kicks)
    select distinct app_id, 0, 1 from kicks where true
    on conflict (app_id) do update set kicks = 1;
