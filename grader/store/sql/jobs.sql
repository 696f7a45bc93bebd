-- Rubrics, submissions and grading jobs (grader.background_tasks), and the grade a job writes
-- when it completes (grader/store/jobs.py).
-- Status transitions are single statements guarded by the expected current status (and, once a
-- job is processing, by its attempt number, which fences off a worker whose lease was taken over).

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

-- name: unfinished_job_counts
-- Jobs still waiting or running, for progress displays.
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'processing') AS processing
FROM grader.background_tasks
WHERE status IN ('pending', 'processing');
