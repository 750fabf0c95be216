"""``python -m kdlab.bench``: measure kdlab on this machine (see :mod:`kdlab.bench`)."""

from . import main

raise SystemExit(main())
