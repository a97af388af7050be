-- Named positions in an app's change log, e.g. `webhook`: every change up to `version` has been
-- delivered to the app's callback URL.
create table cursors (
    app_id  integer not null,
    name    text    not null,
    version integer not null,
    primary key (app_id, name)
) strict, without rowid;
