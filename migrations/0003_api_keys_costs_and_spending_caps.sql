-- 0003: API keys for the HTTP API (jobs scoped to the key that made them), the cost of each
-- grade and the daily spending it adds up to, spending caps that pause grading, and the
-- prompt-injection signals found in an essay.

CREATE TABLE IF NOT EXISTS grader.api_keys (
    key_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    -- sha256 of the key: the key itself is shown once, at creation, and never stored
    key_hash    text NOT NULL UNIQUE,
    -- the first characters of the key, so that a person can tell keys apart in a listing
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The key that made a submission or a job; NULL for the command line and the Python client.
ALTER TABLE grader.submissions
    ADD COLUMN IF NOT EXISTS api_key_id uuid REFERENCES grader.api_keys (key_id);
ALTER TABLE grader.background_tasks
    ADD COLUMN IF NOT EXISTS api_key_id uuid REFERENCES grader.api_keys (key_id);

-- What the model call that produced a grade cost (NULL: the model has no price in the table),
-- and the signals of a possible prompt injection in the essay (empty: none), for human review.
ALTER TABLE grader.grades ADD COLUMN IF NOT EXISTS cost_usd numeric(14, 6);
ALTER TABLE grader.grades
    ADD COLUMN IF NOT EXISTS injection_signals text[] NOT NULL DEFAULT '{}';

-- Spending per UTC day, added to in the statement that stores a grade; a month is the sum of
-- its days, so a cap check reads at most 31 rows.
CREATE TABLE IF NOT EXISTS grader.daily_spending (
    day       date PRIMARY KEY,
    cost_usd  numeric(16, 6) NOT NULL DEFAULT 0,
    grades    integer NOT NULL DEFAULT 0
);

-- At most one cap per period. No row: no cap.
CREATE TABLE IF NOT EXISTS grader.spending_caps (
    period      text PRIMARY KEY CHECK (period IN ('day', 'month')),
    cap_usd     numeric(14, 2) NOT NULL CHECK (cap_usd >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Why grading is paused right now, or NULL when it is not. Claims check it, so a reached cap
-- leaves jobs pending instead of failing them; status shows it on pending jobs. Periods are
-- UTC days and months: the pause ends when the period rolls over or the cap is raised.
CREATE OR REPLACE FUNCTION grader.spending_pause_reason() RETURNS text
LANGUAGE sql STABLE AS $$
    WITH today AS (
        SELECT (now() AT TIME ZONE 'UTC')::date AS day
    ), spent AS (
        SELECT coalesce(sum(s.cost_usd) FILTER (WHERE s.day = today.day), 0) AS day_usd,
               coalesce(sum(s.cost_usd), 0) AS month_usd
        FROM today
        LEFT JOIN grader.daily_spending AS s
            ON s.day >= date_trunc('month', today.day)::date AND s.day <= today.day
    )
    SELECT CASE c.period
        WHEN 'month' THEN format(
            'paused: the monthly spending cap of $%s is reached ($%s spent this month, UTC); '
            'grading resumes next month or when the cap is raised',
            c.cap_usd, round(spent.month_usd, 2))
        ELSE format(
            'paused: the daily spending cap of $%s is reached ($%s spent today, UTC); '
            'grading resumes at midnight UTC or when the cap is raised',
            c.cap_usd, round(spent.day_usd, 2))
        END
    FROM grader.spending_caps AS c, spent
    WHERE (c.period = 'day' AND spent.day_usd >= c.cap_usd)
       OR (c.period = 'month' AND spent.month_usd >= c.cap_usd)
    -- the month's pause is the longer one: name it first
    ORDER BY c.period = 'month' DESC
    LIMIT 1
$$;
