CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE routing_rules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    topic_pattern TEXT NOT NULL,
    semantic_type TEXT,
    source TEXT,
    consumer_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    priority INTEGER NOT NULL DEFAULT 100,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL
);
CREATE INDEX routing_rules_consumer ON routing_rules (consumer_id);

CREATE TABLE assignments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    lane TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    lease_expires_at REAL,
    worker TEXT,
    last_error TEXT,
    response_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (event_id, agent_id)
);
CREATE INDEX assignments_status ON assignments (status, lane, seq);
CREATE INDEX assignments_event ON assignments (event_id);

CREATE TABLE agent_responses (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    model TEXT NOT NULL,
    raw_text TEXT NOT NULL,
    response TEXT,
    summary TEXT,
    taint TEXT NOT NULL DEFAULT '[]',
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    eval_tokens INTEGER NOT NULL DEFAULT 0,
    response_event_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX agent_responses_event ON agent_responses (event_id, created_at);
CREATE INDEX agent_responses_agent ON agent_responses (agent_id, created_at);
