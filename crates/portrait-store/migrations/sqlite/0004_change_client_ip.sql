-- The address of the client whose call made each change (`ClientIP` of the webhook callback,
-- which is delivered later from the change log, possibly by another node). Changes written before
-- this migration, and those Portrait makes itself, have none: ''.
alter table changes add column client_ip text not null default '';
