"""The production Celery app (wsgi:celery_app) with a Redis visibility timeout of a few seconds.

Only for the worker-loss test: in production the timeout outlasts the hard time limit (an hour), so a
job of a killed worker comes back after that long; here it comes back after
BREASTAPP_TEST_VISIBILITY_TIMEOUT_S seconds, so the test sees the redelivery. Nothing else differs.
"""

import os

from wsgi import celery_app

celery_app.conf.broker_transport_options = {
    **(celery_app.conf.broker_transport_options or {}),
    "visibility_timeout": float(os.environ["BREASTAPP_TEST_VISIBILITY_TIMEOUT_S"]),
}
