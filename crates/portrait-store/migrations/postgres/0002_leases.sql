-- Leases: which node does a per-app singleton job (webhook delivery) right now. A holder renews
-- its lease before it expires; another node takes it over only once it has expired.
create table leases (
    app_id     bigint      not null,
    name       text        not null,
    holder     text        not null,
    expires_at timestamptz not null,
    primary key (app_id, name)
);
