"""The JSON API (DRF): token auth, throttling, JSON errors, resources and actions."""
