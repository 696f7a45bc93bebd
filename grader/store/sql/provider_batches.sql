-- Provider batches of batch grading (grader/store/provider_batches.py).

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
