"""`python -m lastgood.cli …` — the same as the `lastgood` command."""

from lastgood.cli import main

raise SystemExit(main())
