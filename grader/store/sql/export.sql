-- The gradebook export (grader/store/export.py).

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
