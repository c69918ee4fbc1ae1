"""alertd as a running process: the Daemon that builds every part (daemon.py), systemd's
protocol (service.py, sdnotify.py), Prometheus metrics (metrics.py), logging
(logconf.py) and the daily retention job (retention.py).

Import from the modules; this package re-exports nothing.
"""
