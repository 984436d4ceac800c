"""HTML views, one module per area; JSON lives in ``annotations.api``."""
