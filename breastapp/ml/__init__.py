"""Pure inference and training library. TensorFlow/Keras is imported lazily, inside functions,
so that importing `breastapp.ml.result` (the web tier does) stays cheap.

Knows nothing of Flask, SQL or Celery.
"""
