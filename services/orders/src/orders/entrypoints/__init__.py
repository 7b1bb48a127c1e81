"""How the service is started and driven from outside HTTP: its command line."""
