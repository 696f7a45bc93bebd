-- Spending caps and what grading has cost (grader/store/spending.py).

-- name: set_spending_cap
-- Sets the cap of a period ('day' or 'month') in USD.
INSERT INTO grader.spending_caps (period, cap_usd) VALUES (%(period)s, %(cap_usd)s)
ON CONFLICT (period) DO UPDATE SET cap_usd = excluded.cap_usd, updated_at = now();

-- name: remove_spending_cap
-- No cap for a period any more.
DELETE FROM grader.spending_caps WHERE period = %(period)s;

-- name: spending_summary
-- The caps, what today and this month (UTC) have cost so far, and why grading is paused, if it is.
SELECT (SELECT cap_usd::float8 FROM grader.spending_caps WHERE period = 'day') AS daily_cap_usd,
       (SELECT cap_usd::float8 FROM grader.spending_caps WHERE period = 'month')
           AS monthly_cap_usd,
       coalesce(sum(cost_usd) FILTER (WHERE day = (now() AT TIME ZONE 'UTC')::date), 0)::float8
           AS spent_today_usd,
       coalesce(sum(cost_usd), 0)::float8 AS spent_this_month_usd,
       coalesce(sum(grades), 0)::int AS grades_this_month,
       grader.spending_pause_reason() AS paused_reason
FROM grader.daily_spending
WHERE day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date;

-- name: recent_grade_tokens
-- What a grade takes, from the last 200: the usual model and its mean tokens; and how many jobs
-- open provider batches hold (not paid for yet). No row before the first grade.
SELECT model, avg(prompt_tokens)::float8 AS prompt_tokens,
       avg(completion_tokens)::float8 AS completion_tokens,
       (SELECT count(*) FROM grader.background_tasks
        WHERE status = 'processing' AND batch_ref IS NOT NULL) AS held_by_batches
FROM (SELECT model, prompt_tokens, completion_tokens FROM grader.grades
      ORDER BY created_at DESC LIMIT 200) AS recent
GROUP BY model ORDER BY count(*) DESC LIMIT 1;
