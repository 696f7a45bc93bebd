-- Batch grading through the provider's Batch API (half the price, within 24 hours). A batch is
-- recorded here before anything is sent to the provider (the intent), with our reference in the
-- provider batch's metadata, so that a crash at any point can find the batch again instead of
-- paying for a second one. Its jobs are `processing`, held by the batch (worker_id
-- `batch:<ref>`) under a lease that covers the provider's 24-hour window.

CREATE TABLE IF NOT EXISTS grader.provider_batches (
    batch_ref          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider_batch_id  text UNIQUE,
    status             text NOT NULL DEFAULT 'preparing'
                       CHECK (status IN ('preparing', 'submitted', 'collected')),
    model              text NOT NULL,
    jobs               integer NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    submitted_at       timestamptz,
    collected_at       timestamptz,
    outcome            jsonb  -- the provider's final status and what became of each job
);

ALTER TABLE grader.background_tasks
    ADD COLUMN IF NOT EXISTS batch_ref uuid REFERENCES grader.provider_batches (batch_ref);
