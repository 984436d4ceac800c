"""Read-side query shapes, one module per area."""
