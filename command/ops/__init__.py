"""Operations: logs, health, metrics, backup and restore."""
