"""Settings for benchmark runs only: the portal's own, plus the floor view's URL.

The page benchmark serves the portal with ``DJANGO_SETTINGS_MODULE=tests.bench.settings``
so ``/_bench/floor/`` exists there and nowhere else.
"""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"
