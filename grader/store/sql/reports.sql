-- The weekly report's reads over a window (grader/store/reports.py), and the report benchmark's
-- baseline.

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
