import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quai.settings")
application = get_wsgi_application()

# Build the URL configuration and the API (its routers and schemas) now rather than on the first request, then move
# every object alive at this point out of the collector's reach and collect less often (quai.core.runtime): a full
# collection otherwise walks these hundreds of thousands of long-lived objects, stopping all of a process's threads
# for a few hundred milliseconds — the tail of the request latencies (docs/PROMISE.md, "over HTTP").
import quai.urls  # noqa: E402,F401
from quai.core.runtime import collector_tune  # noqa: E402

collector_tune()
