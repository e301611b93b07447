"""The schema's history: an append-only list of named steps, each in SQLite and PostgreSQL dialects.

A step's name is recorded in ``feedgate_migrations`` when it is applied, inside the same transaction, so a
database is always at a known point and a step never runs twice. Never edit a step that has shipped:
add a new one.

Column vocabulary: ``datetime_utc`` (ISO 8601 UTC text, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, in both dialects so
that the two stores sort, compare and bucket times the same way),
``duration_ms``, ``input_tokens``/``output_tokens``, ``*_json`` for JSON text, bodies as bytes as sent.
Indexes on columns most traffic leaves empty (user, session) are partial: every index costs each logged
row an insert, and the log is written on the proxy's own CPU.

Feedback rows carry no foreign key on purpose: a rating may arrive before its request row is written
(or from another gateway instance), and it links by ``request_id`` whenever that row lands.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sqlite: str
    postgres: str


MIGRATIONS: list[Migration] = []


def migration(name: str, sqlite: str, postgres: str | None = None) -> None:
    MIGRATIONS.append(Migration(name, sqlite, postgres if postgres is not None else sqlite))


_REQUESTS_COLUMNS = """
    request_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    datetime_utc TEXT NOT NULL,
    provider TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT,
    target_url TEXT,
    model TEXT,
    is_stream INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    duration_ms {real},
    ttft_ms {real},
    input_tokens INTEGER,
    output_tokens INTEGER,
    total_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    cost_usd {real},
    user_id TEXT,
    session_id TEXT,
    session_path TEXT,
    session_name TEXT,
    prompt_id TEXT,
    prompt_fingerprint TEXT,
    messages_fingerprint TEXT,
    properties_json TEXT NOT NULL DEFAULT '{{}}',
    request_headers_json TEXT,
    request_body {blob},
    response_headers_json TEXT,
    response_body {blob},
    response_json TEXT,
    response_text TEXT,
    finish_reason TEXT,
    upstream_request_id TEXT,
    error_type TEXT,
    error_message TEXT,
    cache_reference_id TEXT,
    body_bytes INTEGER NOT NULL DEFAULT 0
"""

_REQUESTS = """
CREATE TABLE requests (
    id {pk},
    {columns}
);
CREATE INDEX requests_request_id ON requests (request_id, attempt);
CREATE INDEX requests_datetime_utc ON requests (datetime_utc);
CREATE INDEX requests_model ON requests (model, datetime_utc);
CREATE INDEX requests_user_id ON requests (user_id, datetime_utc) WHERE user_id IS NOT NULL;
CREATE INDEX requests_session_id ON requests (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX requests_messages_fingerprint ON requests (messages_fingerprint)
    WHERE user_id IS NOT NULL OR session_id IS NOT NULL;
"""

migration(
    "m001_requests",
    sqlite=_REQUESTS.format(pk="INTEGER PRIMARY KEY", columns=_REQUESTS_COLUMNS.format(real="REAL", blob="BLOB")),
    postgres=_REQUESTS.format(
        pk="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        columns=_REQUESTS_COLUMNS.format(real="DOUBLE PRECISION", blob="BYTEA"),
    ),
)

_FEEDBACK = """
CREATE TABLE feedback_events (
    id {pk},
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rating INTEGER,
    signal TEXT,
    comment TEXT,
    user_id TEXT,
    metadata_json TEXT,
    source TEXT NOT NULL,
    datetime_utc TEXT NOT NULL
);
CREATE INDEX feedback_events_target ON feedback_events (target_type, target_id, id);
CREATE INDEX feedback_events_signal ON feedback_events (kind, signal);
CREATE TABLE feedback (
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    rating INTEGER NOT NULL,
    comment TEXT,
    user_id TEXT,
    metadata_json TEXT,
    datetime_utc TEXT NOT NULL,
    PRIMARY KEY (target_type, target_id)
);
CREATE TABLE scores (
    request_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value {real} NOT NULL,
    value_type TEXT NOT NULL,
    datetime_utc TEXT NOT NULL,
    PRIMARY KEY (request_id, name)
);
CREATE TABLE request_properties (
    request_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    datetime_utc TEXT NOT NULL,
    PRIMARY KEY (request_id, key)
);
"""

migration(
    "m002_feedback",
    sqlite=_FEEDBACK.format(pk="INTEGER PRIMARY KEY", real="REAL"),
    postgres=_FEEDBACK.format(pk="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", real="DOUBLE PRECISION"),
)

# Datasets (Helicone's helicone-dataset API and feedgate's filter snapshots), regression alerts already sent,
# and the indexes the analysis queries need (store/reads/groups.py): covering indexes let stats by model scan
# an index instead of the wide rows, and (group, duration_ms) indexes let percentiles walk to a rank
# (dropped again by m005).
# Four indexes of m001 are replaced by wider ones that serve the same lookups; (messages_fingerprint,
# datetime_utc) also keeps the writer's same-conversation lookup fast when a question is asked often.
_ANALYSIS = """
CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    origin TEXT NOT NULL,
    filter_json TEXT,
    meta_json TEXT,
    created_utc TEXT NOT NULL,
    deleted_utc TEXT
);
CREATE TABLE dataset_items (
    id {pk},
    dataset_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    UNIQUE (dataset_id, request_id)
);
CREATE TABLE regression_alerts (
    fingerprint TEXT PRIMARY KEY,
    dimension TEXT NOT NULL,
    key TEXT NOT NULL,
    metric TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    notified_utc TEXT NOT NULL
);
DROP INDEX requests_model;
CREATE INDEX requests_model_stats ON requests (model, datetime_utc, cost_usd, duration_ms);
CREATE INDEX requests_model_duration ON requests (model, duration_ms, datetime_utc);
CREATE INDEX requests_duration ON requests (duration_ms, datetime_utc);
DROP INDEX requests_request_id;
CREATE INDEX requests_request_id_model ON requests (request_id, attempt, datetime_utc, model, cost_usd, duration_ms);
CREATE INDEX requests_retried ON requests (request_id, attempt) WHERE attempt > 1;
DROP INDEX requests_messages_fingerprint;
CREATE INDEX requests_messages_fingerprint_time ON requests (messages_fingerprint, datetime_utc)
    WHERE user_id IS NOT NULL OR session_id IS NOT NULL;
DROP INDEX requests_datetime_utc;
CREATE INDEX requests_time_ids ON requests (datetime_utc, request_id, messages_fingerprint);
CREATE INDEX feedback_events_implicit ON feedback_events (kind, target_type, target_id, signal, rating);
CREATE INDEX feedback_rating ON feedback (target_type, target_id, rating);
"""

migration(
    "m003_datasets",
    sqlite=_ANALYSIS.format(pk="INTEGER PRIMARY KEY"),
    postgres=_ANALYSIS.format(pk="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
)

# The response cache (Helicone-Cache-Enabled): up to Helicone-Cache-Bucket-Max-Size answers per key, each in
# its own slot. Rows expire by time; the writer deletes expired rows whenever it stores a new one.
_CACHE = """
CREATE TABLE cache_entries (
    key TEXT NOT NULL,
    slot INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers_json TEXT NOT NULL,
    body {blob} NOT NULL,
    is_stream INTEGER NOT NULL DEFAULT 0,
    created_utc TEXT NOT NULL,
    expires_utc TEXT NOT NULL,
    PRIMARY KEY (key, slot)
);
CREATE INDEX cache_entries_expires_utc ON cache_entries (expires_utc);
"""

migration("m004_cache", sqlite=_CACHE.format(blob="BLOB"), postgres=_CACHE.format(blob="BYTEA"))

# The two indexes of m003 keyed by duration go. A duration lands at a random place in its B-tree, so each
# logged row wrote a fresh page in each of them: together they more than doubled the cost of inserting a
# row (105 us per row with them, about 45 without, at 50,000 rows), paid on the proxy's own CPU.
# Percentiles no longer walk them: durations are fetched (store/reads/durations.py) and ranked in Python,
# exact up to 150,000 in scope and from a systematic sample above that.
migration(
    "m005_drop_duration_indexes",
    sqlite="DROP INDEX requests_model_duration; DROP INDEX requests_duration;",
    postgres="DROP INDEX IF EXISTS requests_model_duration; DROP INDEX IF EXISTS requests_duration;",
)

# One answer vocabulary across the chat, Responses and Messages APIs (issue #14). ``model`` stays the effective
# model stats group by; ``request_model`` is what the client asked for and ``response_model`` what the provider
# answered with (a dated snapshot, a deployment's model). ``api`` names the API a row's call used. The Responses
# API's ``response_id`` and ``previous_response_id`` chain a conversation kept on the provider's side, so exports
# rebuild it from the calls feedgate logged; the index finds a call's predecessor. It is partial: only Responses
# rows pay for it, and each of those pays one index insert, as the user_id and session_id indexes charge theirs.
# ``reasoning_tokens`` is the part of the output tokens a reasoning model spent thinking.
_ANSWERS = """
ALTER TABLE requests ADD COLUMN request_model TEXT;
ALTER TABLE requests ADD COLUMN response_model TEXT;
ALTER TABLE requests ADD COLUMN api TEXT;
ALTER TABLE requests ADD COLUMN response_id TEXT;
ALTER TABLE requests ADD COLUMN previous_response_id TEXT;
ALTER TABLE requests ADD COLUMN reasoning_tokens INTEGER;
CREATE INDEX requests_response_id ON requests (response_id) WHERE api = 'responses'
"""

migration("m006_answers_across_apis", sqlite=_ANSWERS)


# The OpenTelemetry trace of a traced call (tracing.enabled): its trace ID, so a trace leads to the logged
# call, and the span feedback on the call is recorded under (gen_ai.evaluation.result). Untraced rows
# leave both null, which costs SQLite nothing and PostgreSQL one bit each. No index: traces name the
# request ID (feedgate.request_id), and the row is found by that.
migration(
    "m007_trace_id",
    sqlite="ALTER TABLE requests ADD COLUMN trace_id TEXT; ALTER TABLE requests ADD COLUMN span_id TEXT;",
)


# Each gateway process notes its run: when it started, when it was last seen alive, and when it stopped.
# A run that never stopped cleanly may have lost the log records it held in memory (store/runs.py): the
# next start, or any instance on the same store, finds it and says so.
_RUNS = """
CREATE TABLE feedgate_runs (
    run_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_utc TEXT NOT NULL,
    seen_utc TEXT NOT NULL,
    stopped_utc TEXT,
    reported_utc TEXT
);
CREATE INDEX feedgate_runs_open ON feedgate_runs (stopped_utc, reported_utc);
"""

migration("m008_runs", sqlite=_RUNS, postgres=_RUNS)


# Console logins (issue #16): one row per signed-in browser. The cookie holds a random token; the store keeps
# only its SHA-256 (``session_hash``), so a copy of the database cannot be replayed as a login. ``key_id`` names
# the feedgate key it was opened with (a hash, never the key), so removing that key from the settings ends its
# sessions. Kept in the store, not in memory, so every instance on one PostgreSQL knows every session.
_CONSOLE_SESSIONS = """
CREATE TABLE console_sessions (
    session_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    seen_utc TEXT NOT NULL,
    expires_utc TEXT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_utc);
"""

migration("m009_console_sessions", sqlite=_CONSOLE_SESSIONS, postgres=_CONSOLE_SESSIONS)


# Rollups (issue #15): per-hour sums per dimension, kept by the writer in the transaction of the rows and the
# feedback they sum (store/rollups/), so stats, insights, regressions and the console's overview read tables
# that grow with hours and groups instead of scanning requests. A cell is (dimension, hour, key); ``keyed`` 0 is
# the dimension's "no value" group (its ``key`` is ''). ``rollup_notes`` holds the sums with a name (signals by
# polarity, requests carrying a signal, scores), ``rollup_latency`` the latency and time-to-first-token
# histograms (8 log-spaced buckets per doubling). ``rollup_dimensions`` says from which hour each dimension's
# rollups are complete: older hours are answered from rows. SQLite keeps them WITHOUT ROWID, clustered by
# dimension and hour, so a time range of one dimension is one contiguous read.
_ROLLUPS = """
CREATE TABLE rollup_cells (
    dimension TEXT NOT NULL,
    hour_utc TEXT NOT NULL,
    keyed INTEGER NOT NULL,
    key TEXT NOT NULL,
    requests {int} NOT NULL DEFAULT 0,
    errors {int} NOT NULL DEFAULT 0,
    input_tokens {int} NOT NULL DEFAULT 0,
    output_tokens {int} NOT NULL DEFAULT 0,
    cost_usd {real} NOT NULL DEFAULT 0,
    durations {int} NOT NULL DEFAULT 0,
    positive {int} NOT NULL DEFAULT 0,
    negative {int} NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, hour_utc, keyed, key)
){rowid};
CREATE TABLE rollup_notes (
    dimension TEXT NOT NULL,
    hour_utc TEXT NOT NULL,
    keyed INTEGER NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    count {int} NOT NULL DEFAULT 0,
    total {real} NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, hour_utc, keyed, key, kind, name)
){rowid};
CREATE TABLE rollup_latency (
    dimension TEXT NOT NULL,
    hour_utc TEXT NOT NULL,
    keyed INTEGER NOT NULL,
    key TEXT NOT NULL,
    metric TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    count {int} NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, hour_utc, keyed, key, metric, bucket)
){rowid};
CREATE TABLE rollup_dimensions (
    dimension TEXT PRIMARY KEY,
    complete_from_utc TEXT NOT NULL
)
"""

migration(
    "m010_rollups",
    sqlite=_ROLLUPS.format(int="INTEGER", real="REAL", rowid=" WITHOUT ROWID"),
    postgres=_ROLLUPS.format(int="BIGINT", real="DOUBLE PRECISION", rowid=""),
)


# Retention (issue #15) keeps requests that a live dataset holds: it asks for each old request whether any
# dataset item names it, which the (dataset_id, request_id) key cannot answer without a scan.
_DATASET_ITEMS_BY_REQUEST = "CREATE INDEX dataset_items_request_id ON dataset_items (request_id);"

migration("m011_dataset_items_by_request", sqlite=_DATASET_ITEMS_BY_REQUEST, postgres=_DATASET_ITEMS_BY_REQUEST)


# Leaner rows (issue #15): how a row's bodies are kept (store/bodies.py). NULL: as sent (every row written
# before this step); 'zstd': compressed, decoded on every read; response_body_encoding 'dropped' (with
# response_body NULL): a stream's raw events were not kept (log.stream_events: none), its reassembled message
# in response_json is the record. Written by the writer, never guessed from a body's bytes. No index: the
# columns are read with their row, never searched.
migration(
    "m012_body_encodings",
    sqlite="ALTER TABLE requests ADD COLUMN request_body_encoding TEXT; "
    "ALTER TABLE requests ADD COLUMN response_body_encoding TEXT;",
)


# The console's "4xx"/"5xx" lists (issue #16): with few or no failed calls, newest-first through the time
# index read every row of the range to find none (1.4 s over 30 days at 1M requests). A partial index holds
# only failed calls, so it costs a write only for those; a filter uses it when its SQL carries the literal
# term ``r.status >= 400`` (store/filters.py adds it to status comparisons that imply it).
_FAILED = "CREATE INDEX requests_failed ON requests (datetime_utc) WHERE status >= 400;"

migration("m013_requests_failed", sqlite=_FAILED, postgres=_FAILED)


def statements(sql: str) -> list[str]:
    """Split a step into statements (the steps hold no semicolons inside literals)."""
    return [part.strip() for part in sql.split(";") if part.strip()]
