-- App records: the settings of apps created or changed through the operator API, one row per
-- app. `body` is the app's settings as JSON text, which the store does not interpret.
-- `revision` is global across apps and only grows (writers serialize on an advisory lock), so a
-- node that read every record up to revision r gets every later change with `revision > r`.
create table app_records (
    sdkappid   bigint not null primary key,
    revision   bigint not null unique,
    body       text   not null,
    updated_ms bigint not null
);
