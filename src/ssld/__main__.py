"""``python -m ssld`` is the same as the ``ssld`` command."""

from ssld.cli import main

raise SystemExit(main())
