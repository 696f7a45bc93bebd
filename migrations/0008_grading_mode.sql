-- How a job asks to be graded: 'now' (the listener, a hand-off or grade-pending take it at once)
-- or 'batch' (the next grade-pending-batch run sends it to the provider's Batch API: half the
-- price, within 24 hours). A job a batch could not grade may be switched to 'now'
-- (GRADER_BATCH_RETRY=synchronous).
ALTER TABLE grader.background_tasks
    ADD COLUMN IF NOT EXISTS grading_mode text NOT NULL DEFAULT 'now'
    CHECK (grading_mode IN ('now', 'batch'));

-- Claiming pending work of one mode, oldest first: a synchronous claim does not walk past
-- thousands of jobs waiting for a batch. Replaces the index on created_at alone.
CREATE INDEX IF NOT EXISTS background_tasks_pending_mode_idx
    ON grader.background_tasks (grading_mode, created_at)
    WHERE status = 'pending';
DROP INDEX IF EXISTS grader.background_tasks_pending_idx;

-- A job waiting for a batch wakes no listener: only 'now' jobs notify.
DROP TRIGGER IF EXISTS background_tasks_inserted_pending ON grader.background_tasks;
CREATE TRIGGER background_tasks_inserted_pending
    AFTER INSERT ON grader.background_tasks
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.grading_mode = 'now')
    EXECUTE FUNCTION grader.notify_task_pending();

DROP TRIGGER IF EXISTS background_tasks_back_to_pending ON grader.background_tasks;
CREATE TRIGGER background_tasks_back_to_pending
    AFTER UPDATE OF status, grading_mode ON grader.background_tasks
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.grading_mode = 'now'
          AND (OLD.status IS DISTINCT FROM NEW.status
               OR OLD.grading_mode IS DISTINCT FROM NEW.grading_mode))
    EXECUTE FUNCTION grader.notify_task_pending();
