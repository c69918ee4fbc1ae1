"""Versioned schema. Each entry upgrades from the previous version; applied at start.

Never edit a migration that has shipped: add a new one. PRAGMA user_version
holds the version, so a newer database refuses an older alertd.
"""

MIGRATIONS: list[str] = [
    # 1: keys, templates, the trigger log and the outbox
    """
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        last_used_at REAL,
        revoked_at REAL
    );
    CREATE TABLE templates (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        fields TEXT NOT NULL,            -- JSON: message, action_type, voice, ...
        created_at REAL NOT NULL
    );
    CREATE TABLE triggers (
        trigger_id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        source TEXT,
        rule_id TEXT,
        event_id INTEGER,
        api_key_id INTEGER,
        acknowledged_at REAL,
        acknowledged_by TEXT
    );
    CREATE TABLE logs (
        log_id INTEGER PRIMARY KEY,
        trigger_id INTEGER NOT NULL,
        created_at REAL NOT NULL,
        source TEXT,
        rule_id TEXT,
        event_id INTEGER,
        to_number TEXT NOT NULL,
        type TEXT NOT NULL,              -- call | sms | both
        template_id TEXT,
        message TEXT,
        params TEXT NOT NULL,            -- JSON: from, voice, repeat, gather, language
        call_sid TEXT,
        sms_sid TEXT,
        status TEXT NOT NULL,            -- initiated | queued | failed | ...
        call_status TEXT,
        sms_status TEXT,
        acknowledged_at REAL,
        error TEXT                       -- JSON {code, message} or NULL
    );
    CREATE INDEX logs_created ON logs (created_at);
    CREATE INDEX logs_source ON logs (source, log_id);
    CREATE INDEX logs_trigger ON logs (trigger_id);
    CREATE INDEX logs_to ON logs (to_number, created_at);   -- an inbound SMS "1" finds its trigger
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        log_id INTEGER NOT NULL,
        channel TEXT NOT NULL,           -- call | sms
        state TEXT NOT NULL,             -- pending | sent | failed
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,   -- when it is due (retry backoff, deferred sends)
        leased_until REAL,               -- set while an attempt is in flight
        last_error TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_log ON outbox (log_id);
    """,
    # 2: the rules engine: every received event, and per (rule, dedup key) state
    """
    CREATE TABLE events (
        event_id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        kind TEXT NOT NULL,              -- webhook | poll | schedule
        name TEXT,                       -- webhook name or rule id
        payload TEXT NOT NULL,           -- JSON
        fired TEXT                       -- JSON list of rule ids
    );
    CREATE INDEX events_received ON events (received_at);
    CREATE TABLE rule_state (
        rule_id TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        firing INTEGER NOT NULL DEFAULT 0,
        since REAL,                      -- when firing last flipped
        notified_at REAL,                -- last firing/repeat notice of this episode
        last_sent_at REAL,               -- for cooldown
        last_evaluated_at REAL,
        PRIMARY KEY (rule_id, dedup_key)
    );
    """,
    # 3: silences, on-call overrides, and the silence a log row was held by
    """
    CREATE TABLE silences (
        silence_id TEXT PRIMARY KEY,     -- sil_ + hex
        matcher TEXT NOT NULL,           -- rule_id | source | to
        value TEXT NOT NULL,             -- a rule id, a source label, or an E.164 number
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        reason TEXT NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT,                 -- 'api key N' or 'cli'
        ended_at REAL                    -- set when removed early (rows are kept as the trace)
    );
    CREATE INDEX silences_match ON silences (matcher, value, ends_at);
    CREATE TABLE oncall_overrides (
        override_id INTEGER PRIMARY KEY,
        rotation TEXT NOT NULL,
        contact TEXT NOT NULL,           -- a contact name from the config
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX oncall_overrides_rotation ON oncall_overrides (rotation, ends_at);
    ALTER TABLE logs ADD COLUMN silence_id TEXT;
    """,
    # 4: until someone answers: retries of unanswered calls, escalation steps, who acknowledged
    """
    ALTER TABLE triggers ADD COLUMN spec TEXT;            -- JSON: retry and escalate, as resolved at send
    ALTER TABLE logs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE logs ADD COLUMN step INTEGER NOT NULL DEFAULT 0;   -- 0 the notification, k escalation step k
    ALTER TABLE logs ADD COLUMN acknowledged_by TEXT;
    ALTER TABLE logs ADD COLUMN answered_by TEXT;         -- Twilio AnsweredBy: human, machine_start, fax
    CREATE TABLE followups (
        id INTEGER PRIMARY KEY,
        trigger_id INTEGER NOT NULL,
        kind TEXT NOT NULL,              -- retry | escalate
        log_id INTEGER,                  -- retry: the unanswered call to place again
        step INTEGER,                    -- escalate: the step number, from 1
        due_at REAL NOT NULL,
        state TEXT NOT NULL,             -- pending | done | cancelled
        created_at REAL NOT NULL,
        done_at REAL
    );
    CREATE INDEX followups_due ON followups (state, due_at);
    CREATE INDEX followups_trigger ON followups (trigger_id, state);
    """,
    # 5: storm control: per-number limits fold what exceeds them into a summary, and rule groups
    """
    ALTER TABLE logs ADD COLUMN send_at REAL;             -- when it goes out: the time it counts against limits
    ALTER TABLE logs ADD COLUMN summary_log_id INTEGER;   -- throttled: the summary it was folded into
    CREATE INDEX logs_to_send ON logs (to_number, send_at);
    CREATE INDEX logs_unsent ON logs (to_number, send_at) WHERE status IN ('queued', 'scheduled');
    CREATE INDEX logs_summary ON logs (summary_log_id) WHERE summary_log_id IS NOT NULL;
    ALTER TABLE triggers ADD COLUMN group_id INTEGER;     -- the rule group this trigger sent, if any
    CREATE INDEX triggers_group ON triggers (group_id) WHERE group_id IS NOT NULL;
    CREATE TABLE rule_groups (
        group_id INTEGER PRIMARY KEY,
        rule_id TEXT NOT NULL,
        group_key TEXT NOT NULL,         -- JSON: the group_by values and whether resolved
        resolved INTEGER NOT NULL DEFAULT 0,
        first_at REAL NOT NULL,          -- the first event of the group arrived
        due_at REAL NOT NULL,            -- first_at + group_wait: the notification goes out
        events INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,             -- pending | sending | sent
        done_at REAL
    );
    CREATE INDEX rule_groups_open ON rule_groups (rule_id, group_key, state);
    CREATE INDEX rule_groups_due ON rule_groups (state, due_at);
    CREATE TABLE rule_group_events (
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL,
        event_id INTEGER,                -- the events row it arrived in
        event TEXT NOT NULL              -- JSON, as the rule saw it (deleted once the group is sent)
    );
    CREATE INDEX rule_group_events_group ON rule_group_events (group_id, id);
    """,
    # 6: dashboard users and their sessions (session ids and passwords stored only as hashes)
    """
    CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,     -- scrypt, with its parameters and salt
        created_at REAL NOT NULL
    );
    CREATE TABLE ui_sessions (
        session_hash TEXT PRIMARY KEY,   -- SHA-256 of the cookie value
        user_id INTEGER NOT NULL,
        csrf TEXT NOT NULL,              -- the token every form of this session carries
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX ui_sessions_user ON ui_sessions (user_id);
    """,
    # 7: every status callback the provider sent, with when it arrived (the trigger story lists them)
    """
    CREATE TABLE status_callbacks (
        id INTEGER PRIMARY KEY,
        log_id INTEGER NOT NULL,
        channel TEXT NOT NULL,           -- call | sms
        status TEXT NOT NULL,            -- as sent: initiated, ringing, in-progress, completed, delivered, ...
        at REAL NOT NULL,                -- when alertd received it (the daemon's clock)
        error_code INTEGER               -- the provider's ErrorCode, when the callback carried one
    );
    CREATE INDEX status_callbacks_log ON status_callbacks (log_id, at);
    """,
    # 8: which alerts each storm summary stands for: a 'both' row over both limits is in two
    """
    CREATE TABLE summary_folds (
        summary_log_id INTEGER NOT NULL,
        log_id INTEGER NOT NULL,
        channel TEXT NOT NULL,           -- call | sms: the summary's channel
        PRIMARY KEY (summary_log_id, log_id)
    ) WITHOUT ROWID;
    CREATE INDEX summary_folds_log ON summary_folds (log_id);
    INSERT INTO summary_folds (summary_log_id, log_id, channel)
        SELECT l.summary_log_id, l.log_id, s.type FROM logs l JOIN logs s ON s.log_id = l.summary_log_id
        WHERE l.summary_log_id IS NOT NULL;
    """,
    # 9: API key scopes (alertd/api/scopes.py); keys made before them keep every right
    """
    ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';  -- space-separated
    """,
    # 10: heartbeats: each check's state and next deadline, its recent pings, its flips, and ping keys
    # (IF NOT EXISTS: a database set back to an older version to test an upgrade may still hold them)
    """
    CREATE TABLE IF NOT EXISTS heartbeats (
        rule_id TEXT PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,       -- the rule's, or made at first sight and kept (the job's URL)
        slug TEXT,
        present INTEGER NOT NULL DEFAULT 1,   -- 0: its rule is gone (kept, so the uuid survives a return)
        status TEXT NOT NULL DEFAULT 'new',   -- new | up | down | paused
        anchor_at REAL,                  -- the period counts from here (last success, or a resume)
        runs TEXT NOT NULL DEFAULT '[]', -- JSON [[rid, started_at], ...]: runs in progress
        reason TEXT,                     -- why it is down
        down_at REAL,                    -- the next deadline (NULL: none), cleared in the flip's transaction
        last_ping_at REAL,
        last_ping_kind TEXT,
        n_pings INTEGER NOT NULL DEFAULT 0,
        n_success INTEGER NOT NULL DEFAULT 0,
        n_fail INTEGER NOT NULL DEFAULT 0,
        n_start INTEGER NOT NULL DEFAULT 0,
        n_log INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        changed_at REAL                  -- the last flip
    );
    CREATE UNIQUE INDEX IF NOT EXISTS heartbeats_slug ON heartbeats (slug) WHERE slug IS NOT NULL AND present = 1;
    CREATE INDEX IF NOT EXISTS heartbeats_due ON heartbeats (down_at) WHERE down_at IS NOT NULL;
    CREATE TABLE IF NOT EXISTS heartbeat_pings (
        id INTEGER PRIMARY KEY,
        rule_id TEXT NOT NULL,
        n INTEGER NOT NULL,              -- the check's ping number (only the newest are kept)
        at REAL NOT NULL,
        kind TEXT NOT NULL,              -- success | fail | start | log
        exit_status INTEGER,
        rid TEXT,
        duration REAL,                   -- seconds since its start, for an end that closed a run
        method TEXT,
        remote TEXT,
        body TEXT                        -- the first 100 KB
    );
    CREATE INDEX IF NOT EXISTS heartbeat_pings_rule ON heartbeat_pings (rule_id, n);
    CREATE TABLE IF NOT EXISTS heartbeat_flips (
        id INTEGER PRIMARY KEY,
        rule_id TEXT NOT NULL,
        at REAL NOT NULL,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        reason TEXT,
        owed INTEGER NOT NULL DEFAULT 0, -- 1: a notification is due for it and not handed to dispatch yet
        event TEXT                       -- JSON: what the notification renders
    );
    CREATE INDEX IF NOT EXISTS heartbeat_flips_rule ON heartbeat_flips (rule_id, at);
    CREATE INDEX IF NOT EXISTS heartbeat_flips_owed ON heartbeat_flips (owed) WHERE owed = 1;
    CREATE TABLE IF NOT EXISTS ping_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,   -- SHA-256 (the key is shown once)
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    """,
    # 11: reaching whoever is on call: inbound calls, calendar feed tokens, shift notices sent
    # (IF NOT EXISTS: a database set back to an older version, as tests of earlier upgrades do, upgrades again)
    """
    CREATE TABLE IF NOT EXISTS inbound_calls (
        id INTEGER PRIMARY KEY,
        call_sid TEXT NOT NULL UNIQUE,   -- the provider's id of the inbound call: a retried webhook is one call
        number TEXT NOT NULL,            -- ours, the one that was called
        caller TEXT NOT NULL,
        log_id INTEGER NOT NULL,         -- its row in the trigger log
        steps TEXT NOT NULL,             -- JSON [[label, [numbers]], ...]: who is rung, in order, as resolved at the start
        step INTEGER NOT NULL DEFAULT 0, -- the step being rung
        status TEXT NOT NULL,            -- ringing | answered | voicemail | missed
        answered_by TEXT,                -- the label of the step that answered
        duration INTEGER,                -- seconds connected
        recording_url TEXT,
        recording_duration INTEGER,
        transcription TEXT,
        voicemail_state TEXT,            -- NULL | awaiting (a transcription) | notified
        voicemail_due_at REAL,           -- awaiting: notify with the link alone from then
        voicemail_trigger_id INTEGER,
        listen_hash TEXT,                -- SHA-256 of the token in the voicemail's listening link
        created_at REAL NOT NULL,
        ended_at REAL
    );
    CREATE INDEX IF NOT EXISTS inbound_calls_voicemail ON inbound_calls (voicemail_state, voicemail_due_at);
    CREATE TABLE IF NOT EXISTS oncall_feeds (
        feed_id INTEGER PRIMARY KEY,
        rotation TEXT NOT NULL,
        prefix TEXT NOT NULL,            -- the token's first characters, to tell feeds apart in a listing
        token_hash TEXT NOT NULL UNIQUE, -- SHA-256 of the token (the token itself is shown once)
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE IF NOT EXISTS shift_notices (
        rotation TEXT NOT NULL,
        contact TEXT NOT NULL,
        shift_start REAL NOT NULL,
        trigger_id INTEGER,              -- the notice sent
        created_at REAL NOT NULL,
        PRIMARY KEY (rotation, contact, shift_start)
    ) WITHOUT ROWID;
    """,
    # 12: which provider (its name in providers:) carried each channel's last attempt (failover)
    """
    ALTER TABLE logs ADD COLUMN call_provider TEXT;
    ALTER TABLE logs ADD COLUMN sms_provider TEXT;
    -- the provider's own word when it is not alertd's (Vonage 'unanswered' is stored as 'no-answer')
    ALTER TABLE status_callbacks ADD COLUMN provider_status TEXT;
    """,
    # 13: PostgreSQL's triggers that tell every node of a change to keys or silences; one box needs none
    "SELECT 13",
]
