-- Checking grades against a school's own graders: human-scored sets, and evaluation runs whose
-- jobs go through the same trigger, flow and tasks as production grading, tagged with the run.

CREATE TABLE IF NOT EXISTS grader.evaluation_sets (
    set_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    rubric_id   uuid NOT NULL REFERENCES grader.rubrics (rubric_id),
    items       integer NOT NULL CHECK (items >= 0),
    source      text NOT NULL,  -- the file it was imported from (a name, not its content)
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One essay of a set with its human scores: {"criterion key": score, ..., "total": score}
-- (criteria and/or a holistic total); `second` is a second rater's, where one exists.
CREATE TABLE IF NOT EXISTS grader.evaluation_items (
    set_id         uuid NOT NULL REFERENCES grader.evaluation_sets (set_id) ON DELETE CASCADE,
    item_id        text NOT NULL,
    submission_id  uuid NOT NULL REFERENCES grader.submissions (submission_id),
    human          jsonb NOT NULL,
    second         jsonb,
    PRIMARY KEY (set_id, item_id)
);

CREATE TABLE IF NOT EXISTS grader.evaluation_runs (
    run_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    set_id       uuid NOT NULL REFERENCES grader.evaluation_sets (set_id) ON DELETE CASCADE,
    label        text NOT NULL,
    model        text NOT NULL,
    settings     jsonb NOT NULL DEFAULT '{}',  -- what else the run was asked for (simulator noise)
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    metrics      jsonb  -- the agreement summary once computed (for compare and listing)
);

-- A job created by an evaluation run; NULL for production grading. Production monitoring and
-- the weekly report's production figures leave these out; spending caps count them.
ALTER TABLE grader.background_tasks
    ADD COLUMN IF NOT EXISTS evaluation_run_id uuid
        REFERENCES grader.evaluation_runs (run_id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS background_tasks_evaluation_run_idx
    ON grader.background_tasks (evaluation_run_id) WHERE evaluation_run_id IS NOT NULL;

-- What produced a grade: the prompt version (a hash of the system prompt, the rubric and the
-- anchor essays that went into it), and the criteria on which repeated samples disagreed by
-- more than GRADER_DISAGREEMENT_POINTS (each sample's score is kept in `criteria`).
ALTER TABLE grader.grades ADD COLUMN IF NOT EXISTS prompt_version text;
ALTER TABLE grader.grades ADD COLUMN IF NOT EXISTS disagreement text[] NOT NULL DEFAULT '{}';
