"""Geodata and map layers: coordinates, boundaries, point location and map figures."""
