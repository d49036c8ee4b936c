"""``python -m brickwork`` is the ``brickwork`` command."""

from brickwork.cli import main

raise SystemExit(main())
