-- The address of the client whose call made each change (the same change as
-- migrations/sqlite/0004_change_client_ip.sql). Adding a column with a constant default rewrites
-- nothing (PostgreSQL ≥ 11), so this is quick on a large log.
alter table changes add column client_ip text not null default '';
