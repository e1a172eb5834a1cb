"""``python -m viztracer``: the same as the ``viztracer`` command."""

import sys

from viztracer.main import main

sys.exit(main())
