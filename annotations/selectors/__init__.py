"""The one home for reads: one module per entity, shared by the HTML views, the API and services.

- ``projects``: projects a user sees, their counts and members, the dashboard's next-step hint
- ``items``: item lists with filters, the labeling lease candidates, the item export records
- ``labels``: human labels (progress, agreement, activity), weak/refined labels, label export records
- ``jobs``: background jobs (lists by kind, one job, what a queued job waits for)
- ``rounds``: training rounds, model versions, the prediction-visibility rule, the learning curve
- ``predictions``: the review queue and predictions of a round
- ``variants``: the variant queue, per-job variant counts, the word diff
- ``tokens``: API tokens a user may see

Selectors take keyword-only filter arguments and never build HTTP responses: a missing object
is ``None`` (the view or API raises its 404), never ``Http404`` or ``get_object_or_404``.
They import models and other selectors only (never views, forms, the API or services), which
the import-linter contracts in ``pyproject.toml`` enforce.
"""
