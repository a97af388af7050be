-- Kicks outlive the account row, and catch-up reads one account's changes by index.
--
-- `kicks`: UserSigs of `user_id` minted at or before `not_before` (Unix seconds) are revoked. A
-- table of its own, not a column of `accounts`, so that deleting an account and importing it again
-- does not bring its revoked UserSigs back. Existing kicks move over; `accounts.kicked_before`
-- goes.
create table kicks (
    app_id     integer not null,
    user_id    text    not null,
    not_before integer not null,
    primary key (app_id, user_id)
) strict, without rowid;

insert into kicks (app_id, user_id, not_before)
    select app_id, user_id, kicked_before from accounts where kicked_before > 0;

drop index accounts_kicked;
alter table accounts drop column kicked_before;

-- A WebSocket catch-up (`subscribe` with `since`) reads only the subscribed accounts' changes
-- after a version (`Store::changes_of`), not the app's whole log after it.
create index changes_by_user on changes (app_id, user_id, version);
