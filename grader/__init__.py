"""The grader's core library: settings, the database (pools, the embedded server, migrations),
the store (every SQL statement, by name), the records (rubrics, grades, job status), the model
client and prompt, the injection detector, prices and spending caps, the hand-off to Prefect, and
the model simulator.

The layers point one way: `flows`, `tasks` and `reports` import this library, and it never
imports them; `essay_grader` (the command line, the HTTP API, the local stack, the demo and the
Python client) sits on top and may import everything.
"""
