-- Grading on arrival: LISTEN for jobs, and the listening workers' heartbeats
-- (grader/store/listeners.py).

-- name: listen_job_finished
-- Subscribe to the notification a trigger sends when a job reaches a terminal status.
LISTEN grader_task_finished;

-- name: listen_job_pending
-- Subscribe to the notification a trigger sends when a job becomes pending.
LISTEN grader_task_pending;

-- name: listener_alive
-- Whether a listening worker beat its heart in the last `within_seconds`.
SELECT EXISTS (
    SELECT 1 FROM grader.listeners WHERE seen_at > now() - make_interval(secs => %(within_seconds)s)
) AS alive;

-- name: other_listener_alive
-- Whether another listening worker than this one beat its heart in the last `within_seconds`.
SELECT EXISTS (
    SELECT 1 FROM grader.listeners
    WHERE worker_id <> %(worker_id)s AND seen_at > now() - make_interval(secs => %(within_seconds)s)
) AS alive;

-- name: listener_heartbeat
-- A listening worker says it is alive (and which flow run it is).
INSERT INTO grader.listeners (worker_id, flow_run_id) VALUES (%(worker_id)s, %(flow_run_id)s)
ON CONFLICT (worker_id) DO UPDATE SET seen_at = now(), flow_run_id = EXCLUDED.flow_run_id;

-- name: listener_gone
-- A listening worker stops listening.
DELETE FROM grader.listeners WHERE worker_id = %(worker_id)s;
