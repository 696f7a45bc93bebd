"""`python -m essay_grader.cli`: the `grader` command."""

import sys

from essay_grader.cli import main

sys.exit(main())
