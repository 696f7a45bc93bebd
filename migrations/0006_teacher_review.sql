-- Teachers stay in charge: every grade has a review state, a person's decision (accept, or
-- override scores) is final and audited, and concurrent decisions conflict instead of
-- overwriting each other (optimistic versioning).

ALTER TABLE grader.grades
    ADD COLUMN IF NOT EXISTS review_state text NOT NULL DEFAULT 'auto'
        CHECK (review_state IN ('auto', 'needs_review', 'reviewed')),
    -- why a person should look: [{"reason": ..., "detail": ...}], as computed when graded
    ADD COLUMN IF NOT EXISTS review_reasons jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1,
    ADD COLUMN IF NOT EXISTS reviewed_by text,
    ADD COLUMN IF NOT EXISTS reviewed_at timestamptz;

-- The API key of the grade's job, copied when the grade is written: a teacher's queue is that
-- key's grades, found in the index below without visiting the jobs.
ALTER TABLE grader.grades ADD COLUMN IF NOT EXISTS api_key_id uuid;
UPDATE grader.grades AS g SET api_key_id = t.api_key_id
FROM grader.background_tasks AS t
WHERE t.task_id = g.task_id AND t.api_key_id IS NOT NULL AND g.api_key_id IS NULL;

-- the queue: grades waiting for a person, oldest first; the counts by reason and key come from
-- the index alone (an index-only scan once the table is vacuumed)
CREATE INDEX IF NOT EXISTS grades_review_queue_idx
    ON grader.grades (created_at, grade_id) INCLUDE (api_key_id, review_reasons)
    WHERE review_state = 'needs_review';
CREATE INDEX IF NOT EXISTS grades_reviewed_idx
    ON grader.grades (created_at, grade_id) INCLUDE (api_key_id)
    WHERE review_state = 'reviewed';

-- One row per decision: who, when, the scores before and after, the note.
CREATE TABLE IF NOT EXISTS grader.grade_reviews (
    review_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    grade_id    uuid NOT NULL REFERENCES grader.grades (grade_id) ON DELETE CASCADE,
    action      text NOT NULL CHECK (action IN ('accept', 'override')),
    decided_by  text NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now(),
    before      jsonb NOT NULL,  -- {criterion key: score}
    after       jsonb NOT NULL,
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS grade_reviews_grade_idx ON grader.grade_reviews (grade_id, decided_at);

-- Signed-in teachers of the review page: a session per sign-in, keyed by the sha256 of its
-- cookie value (the cookie itself is never stored), with the CSRF token its forms carry.
CREATE TABLE IF NOT EXISTS grader.review_sessions (
    session_hash  text PRIMARY KEY,
    api_key_id    uuid NOT NULL REFERENCES grader.api_keys (key_id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

-- the gradebook export and GET /v1/grades page through grades in this order
CREATE INDEX IF NOT EXISTS grades_created_idx ON grader.grades (created_at, grade_id);
