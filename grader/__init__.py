"""The grader's core library, by concern: `grading` (rubrics, essay checks, scoring, prices),
`model` (the prompt, the chat request, which failures to retry), `quality` (the injection
detector and the recheck), `store` (PostgreSQL: every SQL statement by name), plus settings,
errors, the job record, a flow run's context, the hand-off to Prefect, and `assessment` (the
model's replies to one grade with its reasons for review, above grading, quality and review).

The layers point one way: `flows`, `tasks` and `reports` import this library, and it never
imports them; `essay_grader` (the command line, the HTTP API, the pages, the local stack, the demo
and the Python client) sits on top and may import everything. `model_simulator` stands apart.
"""
