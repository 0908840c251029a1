"""The web faces: Dash pages, REST API and Socket.IO namespaces (thin: they call the core)."""
