"""Matters (事项): what the center's one window registers, under one case number for life."""
