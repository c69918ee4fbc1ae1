"""Sources turn the outside world into events: webhook, poll, schedule."""
