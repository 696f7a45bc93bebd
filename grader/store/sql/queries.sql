-- Every SQL statement the grader runs, by name. Python calls them with grader.db.query(NAME).
-- Status transitions are single statements guarded by the expected current status (and, once a
-- job is processing, by its attempt number, which fences off a worker whose lease was taken over).

-- name: ping
-- A round trip, for health checks.
SELECT 1;

-- name: database_exists
-- Whether a database of this name exists on the server (before creating it).
SELECT 1 FROM pg_database WHERE datname = %s;

-- name: create_migrations_table
-- The ledger of applied migration files; created before the first migration runs.
CREATE SCHEMA IF NOT EXISTS grader;
CREATE TABLE IF NOT EXISTS grader.schema_migrations (
    version     text PRIMARY KEY,
    filename    text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: lock_migrations
-- Serialises migrators, across all of their transactions, until unlock_migrations.
SELECT pg_advisory_lock(hashtext('grader.schema_migrations'));

-- name: unlock_migrations
SELECT pg_advisory_unlock(hashtext('grader.schema_migrations'));

-- name: migrations_table_exists
-- NULL in `exists` on a database that never ran a migration.
SELECT to_regclass('grader.schema_migrations') AS exists;

-- name: applied_migrations
-- Migrations already applied, with the checksum of the file as it was then.
SELECT version, filename, checksum FROM grader.schema_migrations ORDER BY version;

-- name: record_migration
-- Marks one migration file applied.
INSERT INTO grader.schema_migrations (version, filename, checksum)
VALUES (%(version)s, %(filename)s, %(checksum)s);

-- name: upsert_rubric
-- Stores a rubric once per content; returns its id either way.
WITH inserted AS (
    INSERT INTO grader.rubrics (name, definition, content_sha256)
    VALUES (%(name)s, %(definition)s, %(content_sha256)s)
    ON CONFLICT (content_sha256) DO NOTHING
    RETURNING rubric_id
)
SELECT rubric_id FROM inserted
UNION ALL
SELECT rubric_id FROM grader.rubrics WHERE content_sha256 = %(content_sha256)s
LIMIT 1;

-- name: insert_submission
-- Stores an essay to grade.
INSERT INTO grader.submissions (student_ref, essay, content_sha256, rubric_id, api_key_id)
VALUES (%(student_ref)s, %(essay)s, %(content_sha256)s, %(rubric_id)s, %(api_key_id)s)
RETURNING submission_id;

-- name: submission_for_trigger
-- What the trigger needs to know of a submission (not the essay itself).
SELECT submission_id, content_sha256, rubric_id, api_key_id
FROM grader.submissions WHERE submission_id = %(submission_id)s;

-- name: insert_job
-- Creates a pending grading job unless a live or completed one has the same idempotency key.
INSERT INTO grader.background_tasks
    (task_type, input_data, idempotency_key, api_key_id, grading_mode)
VALUES ('grading', %(input_data)s, %(idempotency_key)s, %(api_key_id)s, %(mode)s)
ON CONFLICT (idempotency_key) WHERE status IN ('pending', 'processing', 'completed') DO NOTHING
RETURNING task_id;

-- name: job_by_idempotency_key
-- The live or completed job that an idempotent trigger returns.
SELECT task_id FROM grader.background_tasks
WHERE idempotency_key = %(idempotency_key)s AND status IN ('pending', 'processing', 'completed');

-- name: set_flow_run_id
-- Records the Prefect flow run a job was handed to (metadata: it changes no status).
UPDATE grader.background_tasks SET flow_run_id = %(flow_run_id)s WHERE task_id = %(task_id)s;

-- name: claim_job
-- pending -> processing for one named job, with a lease for this worker; nothing while a
-- spending cap pauses grading (the job stays pending).
UPDATE grader.background_tasks
SET status = 'processing', started_at = now(), updated_at = now(), attempts = attempts + 1,
    worker_id = %(worker_id)s, lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
WHERE task_id = %(task_id)s AND status = 'pending'
  AND (SELECT grader.spending_pause_reason()) IS NULL
RETURNING task_id, attempts, input_data;

-- name: claim_pending_jobs
-- pending -> processing for up to `limit` of the oldest pending grading jobs of one mode, for a
-- worker ('now') or (batch grading, 'batch') for a provider batch, whose worker_id is
-- 'batch:<ref>'. SKIP LOCKED lets
-- concurrent claimers pass each other; the status guard makes a double claim impossible.
-- Nothing while a spending cap pauses grading.
-- MATERIALIZED: the pick runs exactly once, so the LIMIT holds (an inlined subquery can be
-- rescanned by a join and lock more rows than asked).
WITH picked AS MATERIALIZED (
    SELECT task_id FROM grader.background_tasks
    WHERE status = 'pending' AND grading_mode = %(mode)s AND task_type = 'grading'
      AND (%(evaluation_run_id)s::uuid IS NULL OR evaluation_run_id = %(evaluation_run_id)s)
      AND (SELECT grader.spending_pause_reason()) IS NULL
    ORDER BY created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE grader.background_tasks AS t
SET status = 'processing', started_at = now(), updated_at = now(), attempts = t.attempts + 1,
    worker_id = %(worker_id)s, lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    flow_run_id = COALESCE(%(flow_run_id)s, t.flow_run_id),
    -- the provider batch that holds the job (batch grading), NULL for a worker
    batch_ref = %(batch_ref)s::uuid
FROM picked
WHERE t.task_id = picked.task_id AND t.status = 'pending'
RETURNING t.task_id, t.attempts, t.input_data;

-- name: load_submission
-- The essay and rubric a claimed job grades; nothing once this attempt no longer owns the job
-- (cancelled, or taken over after its lease expired), so the model is not called for nothing.
SELECT s.submission_id, s.essay, r.rubric_id, r.definition
FROM grader.background_tasks AS t
JOIN grader.submissions AS s ON s.submission_id = (t.input_data ->> 'submission_id')::uuid
JOIN grader.rubrics AS r ON r.rubric_id = (t.input_data ->> 'rubric_id')::uuid
WHERE t.task_id = %(task_id)s AND t.status = 'processing' AND t.attempts = %(attempt)s;

-- name: load_submissions
-- load_submission for many claimed jobs at once (a provider batch's): the jobs this attempt
-- still owns, with their essays and rubrics.
SELECT t.task_id, s.submission_id, s.essay, r.rubric_id, r.definition
FROM unnest(%(task_ids)s::uuid[], %(attempts)s::int[]) AS j (task_id, attempt)
JOIN grader.background_tasks AS t ON t.task_id = j.task_id AND t.attempts = j.attempt
JOIN grader.submissions AS s ON s.submission_id = (t.input_data ->> 'submission_id')::uuid
JOIN grader.rubrics AS r ON r.rubric_id = (t.input_data ->> 'rubric_id')::uuid
WHERE t.status = 'processing';

-- name: renew_lease
-- The heartbeat: extends this attempt's lease; no row when the job is no longer ours.
UPDATE grader.background_tasks
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s), updated_at = now()
WHERE task_id = %(task_id)s AND status = 'processing' AND attempts = %(attempt)s
RETURNING lease_expires_at;

-- name: reap_expired_leases
-- The reaper: processing jobs whose lease expired (their worker died or hung) go back to
-- pending while attempts remain, otherwise to failed with the reason.
UPDATE grader.background_tasks
SET status = CASE WHEN attempts < %(max_attempts)s THEN 'pending' ELSE 'failed' END,
    error_message = CASE
        WHEN attempts < %(max_attempts)s
        THEN format('worker %%s lost; lease expired, retrying (attempt %%s of %%s failed)',
                    worker_id, attempts, %(max_attempts)s)
        ELSE format('worker lost; lease expired after %%s attempts', attempts)
    END,
    completed_at = CASE WHEN attempts < %(max_attempts)s THEN NULL ELSE now() END,
    lease_expires_at = NULL, updated_at = now()
WHERE status = 'processing' AND lease_expires_at < now()
RETURNING task_id, status, attempts;

-- name: release_worker_jobs
-- A worker that knows it is dying hands its jobs back at once instead of waiting for the
-- leases: pending again while attempts remain, failed otherwise; with `mode`, to be graded that
-- way from now on (a batch's job sent to the synchronous path).
UPDATE grader.background_tasks
SET status = CASE WHEN attempts < %(max_attempts)s THEN 'pending' ELSE 'failed' END,
    grading_mode = coalesce(%(mode)s, grading_mode),
    error_message = %(reason)s,
    completed_at = CASE WHEN attempts < %(max_attempts)s THEN NULL ELSE now() END,
    lease_expires_at = NULL, updated_at = now()
WHERE status = 'processing' AND worker_id = %(worker_id)s
  AND (%(task_id)s::uuid IS NULL OR task_id = %(task_id)s::uuid)
RETURNING task_id, status;

-- name: cancel_job
-- pending or processing -> cancelled. A processing job's worker finds out at its next step
-- (every later write is guarded by status) or at its next heartbeat.
UPDATE grader.background_tasks
SET status = 'cancelled', error_message = 'cancelled by request', completed_at = now(),
    updated_at = now(), lease_expires_at = NULL
WHERE task_id = %(task_id)s AND status IN ('pending', 'processing')
RETURNING task_id;

-- name: prune_finished_jobs
-- Deletes up to `batch` finished jobs older than the cut-off (SKIP LOCKED keeps it out of the
-- way of workers). Their grades stay, with task_id set to NULL, unless `with_grades`.
WITH doomed AS MATERIALIZED (
    SELECT task_id FROM grader.background_tasks
    WHERE completed_at < now() - make_interval(days => %(days)s)
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), doomed_grades AS (
    DELETE FROM grader.grades
    WHERE %(with_grades)s AND task_id IN (SELECT task_id FROM doomed)
    RETURNING grade_id
)
DELETE FROM grader.background_tasks
WHERE task_id IN (SELECT task_id FROM doomed)
RETURNING task_id, (SELECT count(*) FROM doomed_grades) AS grades_deleted;

-- name: complete_job_with_grade
-- processing -> completed, the grade, and its cost added to the day's spending, in one
-- statement: no grade without completion, and a worker that lost its lease (another attempt
-- owns the job) writes none of them.
WITH done AS (
    UPDATE grader.background_tasks
    SET status = 'completed', completed_at = now(), updated_at = now(), lease_expires_at = NULL,
        error_message = NULL, result = %(result)s
    WHERE task_id = %(task_id)s AND status = 'processing' AND attempts = %(attempt)s
    RETURNING task_id, api_key_id
), graded AS (
    INSERT INTO grader.grades (task_id, submission_id, rubric_id, total_score, max_score,
                               criteria, feedback, model, prompt_tokens, completion_tokens,
                               model_attempts, cost_usd, injection_signals, prompt_version,
                               disagreement, review_state, review_reasons, api_key_id)
    SELECT task_id, %(submission_id)s, %(rubric_id)s, %(total_score)s, %(max_score)s,
           %(criteria)s, %(feedback)s, %(model)s, %(prompt_tokens)s, %(completion_tokens)s,
           %(model_attempts)s, %(cost_usd)s, %(injection_signals)s, %(prompt_version)s,
           %(disagreement)s, %(review_state)s, %(review_reasons)s, api_key_id
    FROM done
    RETURNING grade_id, cost_usd
), spent AS (
    INSERT INTO grader.daily_spending AS s (day, cost_usd, grades)
    SELECT (now() AT TIME ZONE 'UTC')::date, coalesce(cost_usd, 0), 1 FROM graded
    ON CONFLICT (day) DO UPDATE
    SET cost_usd = s.cost_usd + excluded.cost_usd, grades = s.grades + 1
)
SELECT grade_id FROM graded;

-- name: fail_job
-- processing -> failed with the reason, only for the attempt that owns the job.
UPDATE grader.background_tasks
SET status = 'failed', error_message = %(error_message)s, completed_at = now(), updated_at = now(),
    lease_expires_at = NULL
WHERE task_id = %(task_id)s AND status = 'processing' AND attempts = %(attempt)s
RETURNING task_id;

-- name: job_status
-- A job and, once completed, its grade; for a pending job, why grading is paused, if it is.
SELECT t.task_id, t.task_type, t.status, t.input_data, t.error_message, t.attempts,
       t.created_at, t.started_at, t.updated_at, t.completed_at, t.flow_run_id, t.api_key_id,
       t.grading_mode,
       CASE WHEN t.status = 'pending' THEN (SELECT grader.spending_pause_reason()) END
           AS paused_reason,
       (SELECT pb.provider_batch_id FROM grader.provider_batches AS pb
        WHERE pb.batch_ref = t.batch_ref) AS provider_batch_id,
       g.grade_id, g.total_score, g.max_score, g.criteria, g.feedback, g.model,
       g.prompt_tokens, g.completion_tokens, g.model_attempts, g.cost_usd::float8 AS cost_usd,
       g.injection_signals, g.prompt_version, g.disagreement, g.review_state, g.review_reasons,
       g.version, g.reviewed_by, g.reviewed_at
FROM grader.background_tasks AS t
LEFT JOIN grader.grades AS g ON g.task_id = t.task_id
WHERE t.task_id = %(task_id)s;

-- name: listen_job_finished
-- Subscribe to the notification a trigger sends when a job reaches a terminal status.
LISTEN grader_task_finished;

-- name: listen_job_pending
-- Subscribe to the notification a trigger sends when a job becomes pending.
LISTEN grader_task_pending;

-- name: listener_alive
-- Whether a listening worker beat its heart in the last `within_seconds`.
SELECT EXISTS (
    SELECT 1 FROM grader.listeners WHERE seen_at > now() - make_interval(secs => %(within_seconds)s)
) AS alive;

-- name: other_listener_alive
-- Whether another listening worker than this one beat its heart in the last `within_seconds`.
SELECT EXISTS (
    SELECT 1 FROM grader.listeners
    WHERE worker_id <> %(worker_id)s AND seen_at > now() - make_interval(secs => %(within_seconds)s)
) AS alive;

-- name: listener_heartbeat
-- A listening worker says it is alive (and which flow run it is).
INSERT INTO grader.listeners (worker_id, flow_run_id) VALUES (%(worker_id)s, %(flow_run_id)s)
ON CONFLICT (worker_id) DO UPDATE SET seen_at = now(), flow_run_id = EXCLUDED.flow_run_id;

-- name: listener_gone
-- A listening worker stops listening.
DELETE FROM grader.listeners WHERE worker_id = %(worker_id)s;

-- name: recent_jobs
-- The newest jobs with their durations so far.
SELECT task_id, task_type, status, attempts, created_at, completed_at,
       EXTRACT(EPOCH FROM (completed_at - created_at))::float8 AS duration_seconds
FROM grader.background_tasks
WHERE evaluation_run_id IS NULL
ORDER BY created_at DESC
LIMIT %(limit)s;

-- name: failed_jobs
-- The newest failed jobs with their reason and input (ids only: input_data holds no essay text).
SELECT task_id, error_message, input_data, attempts, created_at, completed_at
FROM grader.background_tasks
WHERE status = 'failed' AND evaluation_run_id IS NULL
ORDER BY created_at DESC
LIMIT %(limit)s;

-- name: grading_time_stats
-- Average, minimum and maximum grading time (created -> completed) of the jobs completed in the
-- last `days` days, and how many jobs ended in each state.
SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       avg(EXTRACT(EPOCH FROM (completed_at - created_at)))
           FILTER (WHERE status = 'completed')::float8 AS avg_seconds,
       min(EXTRACT(EPOCH FROM (completed_at - created_at)))
           FILTER (WHERE status = 'completed')::float8 AS min_seconds,
       max(EXTRACT(EPOCH FROM (completed_at - created_at)))
           FILTER (WHERE status = 'completed')::float8 AS max_seconds
FROM grader.background_tasks
WHERE task_type = 'grading' AND evaluation_run_id IS NULL
  AND completed_at > now() - make_interval(days => %(days)s);

-- name: unfinished_job_counts
-- Jobs still waiting or running, for progress displays.
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'processing') AS processing
FROM grader.background_tasks
WHERE status IN ('pending', 'processing');

-- name: report_jobs
-- One narrow row per job created in the window, for the weekly report (streamed with COPY).
-- Times as epoch seconds; the model of the grade where there is one.
SELECT t.task_type, t.status, t.attempts,
       EXTRACT(EPOCH FROM t.created_at)::float8 AS created,
       EXTRACT(EPOCH FROM t.started_at)::float8 AS started,
       EXTRACT(EPOCH FROM t.completed_at)::float8 AS completed,
       g.model
FROM grader.background_tasks AS t
LEFT JOIN grader.grades AS g ON g.task_id = t.task_id
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s AND t.evaluation_run_id IS NULL

-- name: report_errors
-- The most common failure reasons in the window, with ids and numbers normalised away so that
-- one cause is one row.
SELECT left(regexp_replace(regexp_replace(error_message,
           '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'),
           '[0-9]+([.][0-9]+)?', '<n>', 'g'), 300) AS error,
       count(*) AS jobs
FROM grader.background_tasks
WHERE status = 'failed' AND created_at >= %(since)s AND created_at < %(until)s
  AND evaluation_run_id IS NULL
GROUP BY 1
ORDER BY jobs DESC, error
LIMIT %(limit)s;

-- name: report_tokens
-- Token usage by model for the grades of jobs created in the window.
SELECT g.model, count(*) AS grades, sum(g.prompt_tokens)::bigint AS prompt_tokens,
       sum(g.completion_tokens)::bigint AS completion_tokens
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s AND t.evaluation_run_id IS NULL
GROUP BY g.model
ORDER BY g.model;

-- name: report_scores
-- How often each score was given per rubric criterion, for grades in the window.
SELECT c ->> 'key' AS criterion, (c ->> 'score')::int AS score,
       (c ->> 'max_points')::int AS max_points, count(*) AS grades
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
CROSS JOIN LATERAL jsonb_array_elements(g.criteria) AS c
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s AND t.evaluation_run_id IS NULL
GROUP BY 1, 2, 3
ORDER BY 1, 2;

-- name: report_total_scores
-- How many grades gave each total score, per rubric size, for grades in the window.
SELECT g.total_score, g.max_score, count(*) AS grades
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s AND t.evaluation_run_id IS NULL
GROUP BY 1, 2
ORDER BY 2, 1;

-- name: report_evaluation_grades
-- Grades of evaluation runs in the window: left out of the report's production figures, but
-- paid for (their cost counts against the spending caps).
SELECT count(*) AS grades, coalesce(sum(g.cost_usd), 0)::float8 AS cost_usd
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s
  AND t.evaluation_run_id IS NOT NULL;

-- name: report_total_percentiles
-- The report benchmark's baseline: total-duration statistics of completed jobs in one query.
SELECT count(*) AS count, avg(d) AS mean, min(d) AS min,
       percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY d) AS percentiles,
       max(d) AS max
FROM (
    SELECT EXTRACT(EPOCH FROM (completed_at - created_at))::float8 AS d
    FROM grader.background_tasks
    WHERE status = 'completed' AND created_at >= %(since)s AND created_at < %(until)s
      AND evaluation_run_id IS NULL
) AS durations;

-- name: set_spending_cap
-- Sets the cap of a period ('day' or 'month') in USD.
INSERT INTO grader.spending_caps (period, cap_usd) VALUES (%(period)s, %(cap_usd)s)
ON CONFLICT (period) DO UPDATE SET cap_usd = excluded.cap_usd, updated_at = now();

-- name: remove_spending_cap
-- No cap for a period any more.
DELETE FROM grader.spending_caps WHERE period = %(period)s;

-- name: spending_summary
-- The caps, what today and this month (UTC) have cost so far, and why grading is paused, if it is.
SELECT (SELECT cap_usd::float8 FROM grader.spending_caps WHERE period = 'day') AS daily_cap_usd,
       (SELECT cap_usd::float8 FROM grader.spending_caps WHERE period = 'month')
           AS monthly_cap_usd,
       coalesce(sum(cost_usd) FILTER (WHERE day = (now() AT TIME ZONE 'UTC')::date), 0)::float8
           AS spent_today_usd,
       coalesce(sum(cost_usd), 0)::float8 AS spent_this_month_usd,
       coalesce(sum(grades), 0)::int AS grades_this_month,
       grader.spending_pause_reason() AS paused_reason
FROM grader.daily_spending
WHERE day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date;

-- name: recent_grade_tokens
-- What a grade takes, from the last 200: the usual model and its mean tokens; and how many jobs
-- open provider batches hold (not paid for yet). No row before the first grade.
SELECT model, avg(prompt_tokens)::float8 AS prompt_tokens,
       avg(completion_tokens)::float8 AS completion_tokens,
       (SELECT count(*) FROM grader.background_tasks
        WHERE status = 'processing' AND batch_ref IS NOT NULL) AS held_by_batches
FROM (SELECT model, prompt_tokens, completion_tokens FROM grader.grades
      ORDER BY created_at DESC LIMIT 200) AS recent
GROUP BY model ORDER BY count(*) DESC LIMIT 1;

-- name: insert_api_key
-- A new API key for the HTTP API, stored as its hash.
INSERT INTO grader.api_keys (name, key_hash, key_prefix)
VALUES (%(name)s, %(key_hash)s, %(key_prefix)s)
RETURNING key_id, name, key_prefix, created_at;

-- name: api_key_by_hash
-- The live (not revoked) key with this hash, for authenticating a request.
SELECT key_id, name FROM grader.api_keys WHERE key_hash = %(key_hash)s AND revoked_at IS NULL;

-- name: revoke_api_key
-- Revokes a key, named by id or by its prefix; its jobs stay, and nobody can read them over
-- HTTP any more.
UPDATE grader.api_keys SET revoked_at = now()
WHERE revoked_at IS NULL AND (key_id::text = %(key)s OR key_prefix = %(key)s)
RETURNING key_id, name, key_prefix;

-- name: list_api_keys
-- Every key, newest first, without its hash.
SELECT key_id, name, key_prefix, created_at, revoked_at
FROM grader.api_keys ORDER BY created_at DESC;

-- name: insert_evaluation_set
INSERT INTO grader.evaluation_sets (name, rubric_id, items, source)
VALUES (%(name)s, %(rubric_id)s, %(items)s, %(source)s)
RETURNING set_id;

-- name: evaluation_set_by_name
SELECT s.set_id, s.name, s.rubric_id, s.items, s.source, s.created_at, r.definition AS rubric
FROM grader.evaluation_sets AS s JOIN grader.rubrics AS r ON r.rubric_id = s.rubric_id
WHERE s.name = %(name)s;

-- name: list_evaluation_sets
SELECT s.name, s.items, s.source, s.created_at, r.name AS rubric,
       (SELECT count(*) FROM grader.evaluation_runs AS e WHERE e.set_id = s.set_id) AS runs
FROM grader.evaluation_sets AS s JOIN grader.rubrics AS r ON r.rubric_id = s.rubric_id
ORDER BY s.created_at;

-- name: insert_evaluation_run
INSERT INTO grader.evaluation_runs (set_id, label, model, settings)
VALUES (%(set_id)s, %(label)s, %(model)s, %(settings)s)
RETURNING run_id, created_at;

-- name: create_evaluation_jobs
-- One pending grading job per item of the set, tagged with the run: the same job rows the
-- trigger writes (the idempotency key includes the run, so a set can be graded again).
-- `rubric_id` is the set's rubric, or that rubric with the run's anchor essays; `samples`, when
-- given, is how many gradings each essay gets (the median kept).
INSERT INTO grader.background_tasks (task_type, input_data, idempotency_key, evaluation_run_id)
SELECT 'grading',
       jsonb_strip_nulls(jsonb_build_object('submission_id', i.submission_id,
                                            'rubric_id', %(rubric_id)s::uuid,
                                            'samples', %(samples)s::int)),
       encode(sha256(convert_to(i.submission_id::text || ':' || %(rubric_id)s::text || ':' ||
                                %(run_id)s::text, 'UTF8')), 'hex'),
       %(run_id)s
FROM grader.evaluation_items AS i
WHERE i.set_id = %(set_id)s;

-- name: evaluation_run_progress
SELECT count(*) FILTER (WHERE status IN ('pending', 'processing')) AS unfinished,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) AS jobs
FROM grader.background_tasks WHERE evaluation_run_id = %(run_id)s;

-- name: evaluation_run
SELECT e.run_id, e.label, e.model, e.settings, e.created_at, e.finished_at, e.metrics,
       s.name AS set_name, s.set_id, r.definition AS rubric
FROM grader.evaluation_runs AS e
JOIN grader.evaluation_sets AS s ON s.set_id = e.set_id
JOIN grader.rubrics AS r ON r.rubric_id = s.rubric_id
WHERE e.run_id::text LIKE %(prefix)s || '%%' OR e.label = %(prefix)s
ORDER BY e.created_at DESC;

-- name: evaluation_results
-- One narrow row per (essay, target) of a run, for COPY: the human score, the second rater's,
-- the model's and its confidence (no grade: a failed job). A target is a criterion key or
-- "total"; an essay whose human scores have no total gets a total row with no human score,
-- which the report fills with the sum of the criteria when all of them are there.
SELECT i.item_id, h.key AS target, h.value::int AS human,
       (i.second ->> h.key)::int AS second_rater,
       CASE WHEN h.key = 'total' THEN g.total_score ELSE c.score END AS model,
       c.confidence
FROM grader.background_tasks AS t
JOIN grader.evaluation_items AS i
  ON i.set_id = %(set_id)s AND i.submission_id = (t.input_data ->> 'submission_id')::uuid
LEFT JOIN grader.grades AS g ON g.task_id = t.task_id
CROSS JOIN LATERAL (
    SELECT key, value FROM jsonb_each_text(i.human)
    UNION ALL
    SELECT 'total', NULL WHERE NOT i.human ? 'total'
) AS h
LEFT JOIN LATERAL jsonb_to_recordset(g.criteria) AS c(key text, score int, confidence text)
  ON c.key = h.key
WHERE t.evaluation_run_id = %(run_id)s

-- name: evaluation_summary
-- A run's jobs in one row: how many, graded, failed; cost, tokens and time of the grades; the
-- models and prompt versions that made them; how many had disagreeing samples.
SELECT count(*) AS essays, count(g.grade_id) AS graded,
       count(*) FILTER (WHERE t.status = 'failed') AS failed,
       coalesce(sum(g.cost_usd), 0)::float8 AS cost_usd,
       count(g.cost_usd) AS priced,
       coalesce(sum(g.prompt_tokens + g.completion_tokens), 0)::bigint AS tokens,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM
           (t.completed_at - t.created_at))) FILTER (WHERE g.grade_id IS NOT NULL) AS p50_seconds,
       coalesce(array_agg(DISTINCT g.model) FILTER (WHERE g.model IS NOT NULL), '{}') AS models,
       coalesce(array_agg(DISTINCT g.prompt_version)
                FILTER (WHERE g.prompt_version IS NOT NULL), '{}') AS prompt_versions,
       count(*) FILTER (WHERE cardinality(g.disagreement) > 0) AS disagreed
FROM grader.background_tasks AS t
LEFT JOIN grader.grades AS g ON g.task_id = t.task_id
WHERE t.evaluation_run_id = %(run_id)s;

-- name: finish_evaluation_run
UPDATE grader.evaluation_runs SET finished_at = now(), metrics = %(metrics)s
WHERE run_id = %(run_id)s;

-- name: review_queue
-- One page of grades in a review state, oldest first (keyset: after the cursor's created_at
-- and grade_id); the queue of needs_review grades uses grades_review_queue_idx.
SELECT t.task_id, g.grade_id, g.total_score, g.max_score, g.review_state, g.review_reasons,
       g.created_at, g.reviewed_by, g.reviewed_at, g.model, s.student_ref, r.name AS rubric
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
JOIN grader.submissions AS s ON s.submission_id = g.submission_id
JOIN grader.rubrics AS r ON r.rubric_id = g.rubric_id
WHERE g.review_state = %(state)s
  AND (%(api_key_id)s::uuid IS NULL OR g.api_key_id = %(api_key_id)s)
  AND (%(reason)s::text IS NULL
       OR g.review_reasons @> jsonb_build_array(jsonb_build_object('reason', %(reason)s::text)))
  AND (%(rubric)s::text IS NULL OR r.name = %(rubric)s)
  AND (%(after_created)s::timestamptz IS NULL
       OR (g.created_at, g.grade_id) > (%(after_created)s::timestamptz, %(after_id)s::uuid))
ORDER BY g.created_at, g.grade_id
LIMIT %(limit)s;

-- name: review_counts
-- Grades waiting for review and reviewed, and those waiting by reason: index-only scans of the
-- partial indexes (they carry the reasons and the key). Auto grades, the great majority, are
-- not counted: that would read every grade.
SELECT (SELECT count(*) FROM grader.grades AS g
        WHERE g.review_state = 'needs_review'
          AND (%(api_key_id)s::uuid IS NULL OR g.api_key_id = %(api_key_id)s)) AS needs_review,
       (SELECT count(*) FROM grader.grades AS g
        WHERE g.review_state = 'reviewed'
          AND (%(api_key_id)s::uuid IS NULL OR g.api_key_id = %(api_key_id)s)) AS reviewed,
       (SELECT jsonb_build_object(
                   'possible_prompt_injection', count(*) FILTER (WHERE g.review_reasons
                       @> '[{"reason": "possible_prompt_injection"}]'),
                   'samples_disagree', count(*) FILTER (WHERE g.review_reasons
                       @> '[{"reason": "samples_disagree"}]'),
                   'low_confidence', count(*) FILTER (WHERE g.review_reasons
                       @> '[{"reason": "low_confidence"}]'),
                   'rule', count(*) FILTER (WHERE g.review_reasons @> '[{"reason": "rule"}]'),
                   'regrade_differs', count(*) FILTER (WHERE g.review_reasons
                       @> '[{"reason": "regrade_differs"}]'),
                   'justification_mentions_instructions', count(*) FILTER (WHERE g.review_reasons
                       @> '[{"reason": "justification_mentions_instructions"}]'),
                   'recheck_failed', count(*) FILTER (WHERE g.review_reasons
                       @> '[{"reason": "recheck_failed"}]'))
        FROM grader.grades AS g
        WHERE g.review_state = 'needs_review'
          AND (%(api_key_id)s::uuid IS NULL OR g.api_key_id = %(api_key_id)s)) AS by_reason;

-- name: review_detail
-- A graded job for a reviewer: the essay, the grade, the rubric (the API key's own jobs only).
SELECT t.task_id, g.grade_id, g.criteria, g.total_score, g.max_score, g.feedback, g.model,
       g.review_state, g.review_reasons, g.version, g.reviewed_by, g.reviewed_at, g.created_at,
       g.injection_signals, s.essay, s.student_ref, r.name AS rubric
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
JOIN grader.submissions AS s ON s.submission_id = g.submission_id
JOIN grader.rubrics AS r ON r.rubric_id = g.rubric_id
WHERE g.task_id = %(task_id)s
  AND (%(api_key_id)s::uuid IS NULL OR t.api_key_id = %(api_key_id)s);

-- name: review_history
SELECT action, decided_by, decided_at, before, after, note
FROM grader.grade_reviews WHERE grade_id = %(grade_id)s ORDER BY decided_at;

-- name: review_lock_grade
-- The grade a decision is about, locked until the decision commits.
SELECT g.grade_id, g.criteria, g.version, g.review_state
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
WHERE g.task_id = %(task_id)s
  AND (%(api_key_id)s::uuid IS NULL OR t.api_key_id = %(api_key_id)s)
FOR UPDATE OF g;

-- name: review_apply
UPDATE grader.grades
SET criteria = %(criteria)s, total_score = %(total_score)s, review_state = 'reviewed',
    reviewed_by = %(who)s, reviewed_at = now(), version = version + 1
WHERE grade_id = %(grade_id)s
RETURNING version;

-- name: review_audit
INSERT INTO grader.grade_reviews (grade_id, action, decided_by, before, after, note)
VALUES (%(grade_id)s, %(action)s, %(who)s, %(before)s, %(after)s, %(note)s);

-- name: open_review_session
INSERT INTO grader.review_sessions (session_hash, api_key_id, csrf_token, expires_at)
VALUES (%(session_hash)s, %(api_key_id)s, %(csrf_token)s,
        now() + make_interval(secs => %(seconds)s));

-- name: review_session
-- A live session of a live key (a revoked key ends its sessions).
SELECT s.csrf_token, k.key_id, k.name
FROM grader.review_sessions AS s
JOIN grader.api_keys AS k ON k.key_id = s.api_key_id
WHERE s.session_hash = %(session_hash)s AND s.expires_at > now() AND k.revoked_at IS NULL;

-- name: close_review_session
DELETE FROM grader.review_sessions
WHERE session_hash = %(session_hash)s OR expires_at < now();

-- name: export_rubrics
-- The rubrics of the grades an export covers, for its per-criterion columns.
SELECT DISTINCT r.rubric_id, r.name, r.definition
FROM grader.grades AS g
JOIN grader.rubrics AS r ON r.rubric_id = g.rubric_id
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
WHERE (%(since)s::timestamptz IS NULL OR g.created_at >= %(since)s)
  AND (%(rubric)s::text IS NULL OR r.name = %(rubric)s)
  AND (%(api_key_id)s::uuid IS NULL OR t.api_key_id = %(api_key_id)s)
  AND t.evaluation_run_id IS NULL;

-- name: export_grades
-- The gradebook: one row per grade of production jobs (evaluation runs left out), oldest
-- first, after the keyset cursor when one is given. The rubric version is the first 12 hex
-- digits of the rubric's content hash: an edited rubric is a new version.
SELECT s.student_ref, g.submission_id, g.task_id, g.grade_id, g.total_score, g.max_score,
       g.criteria, g.review_state, g.reviewed_by, g.created_at AS graded_at, g.reviewed_at,
       r.name AS rubric, left(r.content_sha256, 12) AS rubric_version, g.model, g.created_at
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
JOIN grader.submissions AS s ON s.submission_id = g.submission_id
JOIN grader.rubrics AS r ON r.rubric_id = g.rubric_id
WHERE (%(since)s::timestamptz IS NULL OR g.created_at >= %(since)s)
  AND (%(rubric)s::text IS NULL OR r.name = %(rubric)s)
  AND (%(api_key_id)s::uuid IS NULL OR t.api_key_id = %(api_key_id)s)
  AND t.evaluation_run_id IS NULL
  AND (%(after_created)s::timestamptz IS NULL
       OR (g.created_at, g.grade_id) > (%(after_created)s::timestamptz, %(after_id)s::uuid))
ORDER BY g.created_at, g.grade_id
LIMIT %(limit)s;

-- name: report_review_queue
-- The review queue now (production grades only): how many wait and for how long.
SELECT count(*) AS waiting,
       EXTRACT(EPOCH FROM max(now() - g.created_at))::float8 AS oldest_seconds,
       EXTRACT(EPOCH FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY now() - g.created_at))
           ::float8 AS median_seconds
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
WHERE g.review_state = 'needs_review' AND t.evaluation_run_id IS NULL;

-- name: report_review_decisions
-- Teachers' decisions made in the window, by day (UTC) and kind.
SELECT to_char(d.decided_at AT TIME ZONE %(tz)s, 'YYYY-MM-DD') AS day,
       count(*) FILTER (WHERE d.action = 'accept') AS accepted,
       count(*) FILTER (WHERE d.action = 'override') AS overridden
FROM grader.grade_reviews AS d
WHERE d.decided_at >= %(since)s AND d.decided_at < %(until)s
GROUP BY 1 ORDER BY 1;

-- name: report_review_changes
-- Per criterion, over the decisions of the window: how often teachers changed the model's
-- score and by how much (the live agreement between the model and the teachers).
SELECT b.key AS criterion, count(*) AS decisions,
       count(*) FILTER (WHERE b.value::int <> (d.after ->> b.key)::int) AS changed,
       avg(abs(b.value::int - (d.after ->> b.key)::int))::float8 AS mean_abs_change
FROM grader.grade_reviews AS d
CROSS JOIN LATERAL jsonb_each_text(d.before) AS b
WHERE d.decided_at >= %(since)s AND d.decided_at < %(until)s
GROUP BY 1 ORDER BY 1;

-- name: report_review_reasons
-- Why the window's production grades were sent to review.
SELECT e ->> 'reason' AS reason, count(*) AS grades
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
CROSS JOIN LATERAL jsonb_array_elements(g.review_reasons) AS e
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s AND t.evaluation_run_id IS NULL
GROUP BY 1 ORDER BY 2 DESC, 1;

-- name: latest_rubric_version
-- The newest version of a rubric name: editing a rubric file stores a new version.
SELECT rubric_id, left(content_sha256, 12) AS version
FROM grader.rubrics WHERE name = %(name)s ORDER BY created_at DESC LIMIT 1;

-- name: regrade_candidates
-- The latest production grade of each submission graded by a rubric of this name, where that
-- grade was made with another version than `rubric_id` (and since `since`).
SELECT submission_id, review_state, api_key_id FROM (
    SELECT DISTINCT ON (g.submission_id) g.submission_id, g.rubric_id, g.review_state,
           g.created_at, t.api_key_id
    FROM grader.grades AS g
    JOIN grader.rubrics AS r ON r.rubric_id = g.rubric_id
    JOIN grader.background_tasks AS t ON t.task_id = g.task_id
    WHERE r.name = %(name)s AND t.evaluation_run_id IS NULL
    ORDER BY g.submission_id, g.created_at DESC
) AS latest
WHERE latest.rubric_id <> %(rubric_id)s
  AND (%(since)s::timestamptz IS NULL OR latest.created_at >= %(since)s);

-- name: open_provider_batch
-- The intent: a batch row, before anything goes to the provider.
INSERT INTO grader.provider_batches (model, jobs) VALUES (%(model)s, 0) RETURNING batch_ref;

-- name: count_provider_batch_jobs
UPDATE grader.provider_batches SET jobs = %(jobs)s WHERE batch_ref = %(batch_ref)s;

-- name: provider_batch_submitted
UPDATE grader.provider_batches
SET provider_batch_id = %(provider_batch_id)s, status = 'submitted', submitted_at = now()
WHERE batch_ref = %(batch_ref)s;

-- name: lock_batch_runs
-- One grade-pending-batch run at a time; held until the connection closes.
SELECT pg_try_advisory_lock(hashtext('grader.provider_batches')) AS locked;

-- name: open_provider_batches
SELECT batch_ref, provider_batch_id, status, model, jobs FROM grader.provider_batches
WHERE status <> 'collected' ORDER BY created_at;

-- name: provider_batch_jobs
-- The jobs a batch still holds (a job cancelled meanwhile is not among them).
SELECT task_id, attempts, input_data FROM grader.background_tasks
WHERE batch_ref = %(batch_ref)s AND status = 'processing'
  AND worker_id = 'batch:' || %(batch_ref)s::text;

-- name: provider_batch_collected
UPDATE grader.provider_batches
SET status = 'collected', collected_at = now(), outcome = %(outcome)s
WHERE batch_ref = %(batch_ref)s;

-- name: drop_empty_provider_batch
DELETE FROM grader.provider_batches WHERE batch_ref = %(batch_ref)s AND jobs = 0
  AND provider_batch_id IS NULL;

-- name: list_provider_batches
-- Batches, newest first, with how many of their jobs are in each status now.
SELECT pb.batch_ref, pb.provider_batch_id, pb.status, pb.model, pb.jobs, pb.created_at,
       pb.submitted_at, pb.collected_at, pb.outcome,
       (SELECT jsonb_object_agg(status, n) FROM (
            SELECT t.status, count(*) AS n FROM grader.background_tasks AS t
            WHERE t.batch_ref = pb.batch_ref GROUP BY 1) AS s) AS job_statuses
FROM grader.provider_batches AS pb
WHERE %(ref)s::text IS NULL OR pb.batch_ref::text LIKE %(ref)s || '%%'
   OR pb.provider_batch_id = %(ref)s
ORDER BY pb.created_at DESC
LIMIT %(limit)s;

-- name: report_grades_by_mode
-- The window's production grades by how the model was called: one request each
-- (synchronous) or in a provider batch, with their cost and tokens by model.
SELECT CASE WHEN t.batch_ref IS NULL THEN 'synchronous' ELSE 'batch' END AS mode, g.model,
       count(*) AS grades, coalesce(sum(g.cost_usd), 0)::float8 AS cost_usd,
       coalesce(sum(g.prompt_tokens), 0)::int8 AS prompt_tokens,
       coalesce(sum(g.completion_tokens), 0)::int8 AS completion_tokens
FROM grader.grades AS g
JOIN grader.background_tasks AS t ON t.task_id = g.task_id
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s AND t.evaluation_run_id IS NULL
GROUP BY 1, 2 ORDER BY 1 DESC, 2;

-- name: count_evaluation_items
UPDATE grader.evaluation_sets SET items = %(items)s WHERE set_id = %(set_id)s;

-- name: copy_evaluation_submissions
COPY grader.submissions (submission_id, essay, content_sha256, rubric_id) FROM STDIN;

-- name: copy_evaluation_items
COPY grader.evaluation_items (set_id, item_id, submission_id, human, second) FROM STDIN;

-- name: evaluation_reference_scores
-- Each essay of a set by its hash, with its human scores (for the simulator).
SELECT s.content_sha256, i.human
FROM grader.evaluation_items AS i
JOIN grader.submissions AS s ON s.submission_id = i.submission_id
WHERE i.set_id = %(set_id)s;
