-- Worker processes report here on every maintenance tick: the "workers alive" signal for
-- autoscaling and dashboards.
CREATE TABLE workers (
    id         TEXT PRIMARY KEY NOT NULL,
    in_flight  INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
