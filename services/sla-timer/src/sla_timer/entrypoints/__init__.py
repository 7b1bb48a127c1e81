"""How the service is started from outside HTTP: its command line."""
