"""cmdcenter: the county command center (domain core, services and web faces)."""

__version__ = "0.1.0"
