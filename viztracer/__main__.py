"""``python -m viztracer``: the same as the ``viztracer`` command."""

import sys

from viztracer.cli import main

sys.exit(main())
