-- 0002: pruning old jobs keeps their grades unless asked otherwise: a grade outlives its job
-- record (task_id becomes NULL), and one task still has at most one grade.

ALTER TABLE grader.grades ALTER COLUMN task_id DROP NOT NULL;
ALTER TABLE grader.grades DROP CONSTRAINT IF EXISTS grades_task_id_fkey;
ALTER TABLE grader.grades
    ADD CONSTRAINT grades_task_id_fkey FOREIGN KEY (task_id)
    REFERENCES grader.background_tasks (task_id) ON DELETE SET NULL;
