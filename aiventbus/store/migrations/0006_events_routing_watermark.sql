-- Every new event entered the status index as 'pending' and left it once routed: two index writes per event, on
-- the publish path. The router keeps a durable watermark instead (every event at or below it is routed), and
-- recovery after a crash reads the events above it in seq order.
CREATE TABLE router_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    routed_through INTEGER NOT NULL
);
INSERT INTO router_state (id, routed_through) VALUES (
    1,
    COALESCE(
        (SELECT MIN(seq) - 1 FROM events WHERE status = 'pending'),
        (SELECT COALESCE(MAX(seq), 0) FROM events)
    )
);
DROP INDEX events_status;
