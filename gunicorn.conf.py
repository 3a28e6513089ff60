"""gunicorn's settings, read from the folder it starts in (`make serve`, the image, compose.yaml)."""

# Access lines without the OAuth callback's code and state (webapp/access_log.py).
logger_class = "webapp.access_log.GunicornLogger"
