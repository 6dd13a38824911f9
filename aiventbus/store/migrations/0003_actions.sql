CREATE TABLE actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    action_type TEXT NOT NULL,
    content TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    response_id TEXT,
    event_id TEXT NOT NULL,
    response_event_id TEXT,
    trace_id TEXT NOT NULL,
    taint TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    expires_at REAL,
    decided_at REAL,
    decided_by TEXT,
    finished_at REAL,
    result TEXT,
    error TEXT,
    result_event_id TEXT
);
CREATE INDEX actions_status ON actions (status, seq);
CREATE INDEX actions_trace ON actions (trace_id, seq);

CREATE TABLE backups (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    mode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    stored_as TEXT NOT NULL,
    reason TEXT NOT NULL,
    action_id TEXT,
    created_at REAL NOT NULL,
    restored_at REAL
);
CREATE INDEX backups_path ON backups (path, seq);
