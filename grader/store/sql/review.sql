-- Teachers' review of grades: the queue, decisions and their audit, and the rubric-change
-- regrade (grader/store/review.py).

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
