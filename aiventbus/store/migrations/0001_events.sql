CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority TEXT NOT NULL,
    semantic_type TEXT,
    dedupe_key TEXT,
    trace_id TEXT NOT NULL,
    parent_event TEXT,
    output_topic TEXT,
    context_refs TEXT NOT NULL DEFAULT '[]',
    memory_scope TEXT,
    source TEXT NOT NULL,
    taint TEXT NOT NULL DEFAULT '[]',
    depth INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at REAL NOT NULL
);
CREATE INDEX events_topic ON events (topic, seq);
CREATE INDEX events_trace ON events (trace_id, seq);
CREATE INDEX events_parent ON events (parent_event) WHERE parent_event IS NOT NULL;
CREATE INDEX events_dedupe ON events (dedupe_key, created_at) WHERE dedupe_key IS NOT NULL;
CREATE INDEX events_status ON events (status) WHERE status IN ('pending', 'processing');
