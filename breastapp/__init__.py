"""breastapp: an open breast-imaging AI workstation (research use only).

`create_app` is imported lazily so that `breastapp.imaging` and `breastapp.ml` stay usable
without Flask (notebooks, the training tools, the command-line analyser).
"""


def create_app(config=None):
    """Build the Flask application; see `breastapp.factory` for the steps."""
    from breastapp.factory import create_app as _create_app

    return _create_app(config)
