-- Monitoring reads: recent and failed jobs, grading-time statistics (grader/store/monitoring.py).

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
