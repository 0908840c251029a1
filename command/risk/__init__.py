"""Risk analysis for the wall screen: township risk scores, hotspots, trends and replay.

`score`, `hotspots`, `trends` and `replay` are pure functions over plain rows and arrays (no
database, no web); `service` reads the database for them, aggregating in SQL where volume matters.
"""
