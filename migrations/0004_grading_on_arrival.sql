-- Grading that starts the moment a job arrives. A listening worker (the grade-on-arrival flow)
-- hears of every job that becomes pending, and keeps a heartbeat row while it listens, so that a
-- trigger knows a worker will take its job at once (and no Prefect hand-off is needed).

-- An empty payload: notifications with equal payloads in one transaction collapse into one, so
-- a bulk insert of thousands of jobs wakes a listener once; it claims what is pending anyway.
CREATE OR REPLACE FUNCTION grader.notify_task_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('grader_task_pending', '');
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS background_tasks_inserted_pending ON grader.background_tasks;
CREATE TRIGGER background_tasks_inserted_pending
    AFTER INSERT ON grader.background_tasks
    FOR EACH ROW
    WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION grader.notify_task_pending();

-- a job handed back (a reaped lease, a crashed run) is pending again: grade it at once too
DROP TRIGGER IF EXISTS background_tasks_back_to_pending ON grader.background_tasks;
CREATE TRIGGER background_tasks_back_to_pending
    AFTER UPDATE OF status ON grader.background_tasks
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION grader.notify_task_pending();

CREATE TABLE IF NOT EXISTS grader.listeners (
    worker_id   text PRIMARY KEY,
    flow_run_id uuid,
    seen_at     timestamptz NOT NULL DEFAULT now()
);
