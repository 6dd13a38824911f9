-- A new root event's trace is named after the event (evt_X starts tr_X), so the trace index need not hold it:
-- trace lookups find the root through the id index. Most events are roots, so this saves one B-tree per insert.
DROP INDEX events_trace;
CREATE INDEX events_trace ON events (trace_id, seq) WHERE trace_id != 'tr_' || substr(id, 5);
