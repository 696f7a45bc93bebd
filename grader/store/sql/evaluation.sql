-- Human-scored sets and evaluation runs (grader/store/evaluation.py).

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
