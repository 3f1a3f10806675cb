"""draw.py's page: the HTTP server and the JSON answer to one picture."""
