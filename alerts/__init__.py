"""Risk watch: alert rules, hotspots, trends and briefings (pure functions on event windows)."""
