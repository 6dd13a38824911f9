CREATE TABLE knowledge (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    set_by TEXT NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE pinned_facts (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    fact TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX pinned_facts_agent ON pinned_facts (agent_id, created_at);

CREATE TABLE memories (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('semantic', 'episodic', 'procedural')),
    scope TEXT NOT NULL,
    content TEXT NOT NULL,
    importance REAL NOT NULL CHECK (importance >= 0 AND importance <= 1),
    seen_count INTEGER NOT NULL DEFAULT 1,
    source_event_id TEXT,
    trace_id TEXT,
    agent_id TEXT,
    response_id TEXT,
    taint TEXT NOT NULL DEFAULT '[]',
    created_by TEXT NOT NULL DEFAULT 'user',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_recalled_at REAL,
    recall_count INTEGER NOT NULL DEFAULT 0,
    superseded_by TEXT
);
CREATE INDEX memories_scope ON memories (scope, created_at) WHERE superseded_by IS NULL;
CREATE INDEX memories_created ON memories (created_at);

-- External-content FTS5 index over memories.content, kept in step by triggers.
CREATE VIRTUAL TABLE memories_fts USING fts5(
    content, content = 'memories', content_rowid = 'seq', tokenize = 'porter unicode61'
);
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF content ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content) VALUES ('delete', old.seq, old.content);
    INSERT INTO memories_fts (rowid, content) VALUES (new.seq, new.content);
END;

-- One row per agent response the distiller has handled, so none is distilled twice.
CREATE TABLE memory_distilled (
    response_id TEXT PRIMARY KEY,
    distilled_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    memories INTEGER NOT NULL DEFAULT 0
);
