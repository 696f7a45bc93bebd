-- 0001: the grading schema: submissions, rubrics, the job table and grades.
-- Safe to run with `psql -f` as well as `grader migrate`: every object is created only if missing.

CREATE SCHEMA IF NOT EXISTS grader;

CREATE TABLE IF NOT EXISTS grader.rubrics (
    rubric_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL,
    definition      jsonb NOT NULL,
    content_sha256  text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS grader.submissions (
    submission_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    student_ref     text,
    essay           text NOT NULL,
    content_sha256  text NOT NULL,
    rubric_id       uuid REFERENCES grader.rubrics (rubric_id),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The job record and the source of truth for a grade's progress.
-- Status moves only forward (pending -> processing -> completed | failed | cancelled), with one
-- way back (processing -> pending) when a lease expires; every transition is a single statement
-- in grader/sql/queries.sql guarded by the expected current status.
CREATE TABLE IF NOT EXISTS grader.background_tasks (
    task_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_type        text NOT NULL DEFAULT 'grading',
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    input_data       jsonb NOT NULL,
    result           jsonb,
    error_message    text,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    lease_expires_at timestamptz,
    worker_id        text,
    idempotency_key  text,
    flow_run_id      uuid,
    -- completed_at is set exactly for the terminal states
    CONSTRAINT background_tasks_completed_at_iff_terminal CHECK (
        (completed_at IS NOT NULL) = (status IN ('completed', 'failed', 'cancelled'))
    ),
    -- a job being worked on always has a lease and an owner
    CONSTRAINT background_tasks_processing_has_lease CHECK (
        status <> 'processing' OR (lease_expires_at IS NOT NULL AND worker_id IS NOT NULL)
    )
);

-- Monitoring: jobs by status over time ("failed jobs, newest first").
CREATE INDEX IF NOT EXISTS background_tasks_status_created_idx
    ON grader.background_tasks (status, created_at DESC);
-- Monitoring: jobs of one type in one status ("completed grading jobs").
CREATE INDEX IF NOT EXISTS background_tasks_type_status_idx
    ON grader.background_tasks (task_type, status);
-- Monitoring: recent jobs first.
CREATE INDEX IF NOT EXISTS background_tasks_created_idx
    ON grader.background_tasks (created_at DESC);
-- Reports: durations of jobs finished in a window.
CREATE INDEX IF NOT EXISTS background_tasks_completed_idx
    ON grader.background_tasks (completed_at)
    WHERE completed_at IS NOT NULL;
-- Claiming pending work, oldest first; stays small because finished rows leave it.
CREATE INDEX IF NOT EXISTS background_tasks_pending_idx
    ON grader.background_tasks (created_at)
    WHERE status = 'pending';
-- Finding expired leases.
CREATE INDEX IF NOT EXISTS background_tasks_lease_idx
    ON grader.background_tasks (lease_expires_at)
    WHERE status = 'processing';
-- Idempotent trigger: one live or completed job per submission + rubric + essay content.
-- A failed or cancelled job does not block asking again.
CREATE UNIQUE INDEX IF NOT EXISTS background_tasks_idempotency_idx
    ON grader.background_tasks (idempotency_key)
    WHERE status IN ('pending', 'processing', 'completed');

CREATE TABLE IF NOT EXISTS grader.grades (
    grade_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- one grade per grading task, whatever happens to the worker that wrote it
    task_id           uuid NOT NULL UNIQUE REFERENCES grader.background_tasks (task_id)
                      ON DELETE CASCADE,
    submission_id     uuid NOT NULL REFERENCES grader.submissions (submission_id),
    rubric_id         uuid NOT NULL REFERENCES grader.rubrics (rubric_id),
    total_score       integer NOT NULL CHECK (total_score >= 0),
    max_score         integer NOT NULL CHECK (max_score > 0),
    criteria          jsonb NOT NULL,
    feedback          text NOT NULL,
    model             text NOT NULL,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    model_attempts    integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (total_score <= max_score)
);
CREATE INDEX IF NOT EXISTS grades_submission_idx ON grader.grades (submission_id);

-- Listeners (the client's wait, the web app) hear about every job that reaches a terminal state.
CREATE OR REPLACE FUNCTION grader.notify_task_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('grader_task_finished', NEW.task_id::text || ':' || NEW.status);
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS background_tasks_finished ON grader.background_tasks;
CREATE TRIGGER background_tasks_finished
    AFTER UPDATE OF status ON grader.background_tasks
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION grader.notify_task_finished();
