"""The numbered plain-SQL migrations, shipped in the package so that an installed grader (no
source tree) can migrate; `grader migrate` applies them (each also runs with `psql -f`)."""
