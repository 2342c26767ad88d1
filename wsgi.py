"""Production entry points: gunicorn's `wsgi:app` and Celery's `wsgi:celery_app`.

    gunicorn 'wsgi:app'
    celery -A wsgi:celery_app worker --concurrency 1 --loglevel INFO

Importing this module must not import TensorFlow: the worker loads the networks in each worker
process after fork (breastapp.tasks.worker).
"""

from breastapp import create_app

app = create_app()
celery_app = app.extensions["celery"]

import breastapp.tasks.worker  # noqa: E402,F401  (connects the worker signal handlers)
