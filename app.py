"""The Flask app for `flask --app app <command>` and the development server (`flask --app app run`)."""

from breastapp import create_app

app = create_app()
