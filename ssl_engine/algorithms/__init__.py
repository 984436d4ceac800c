"""One registry of SSL algorithms; each overrides ``train_step`` over the shared trainer.

Importing this package registers the built-in algorithms (one module each). Definitions follow
ALGORITHMS.md; tensors are (heads, batch, classes).
"""

from ssl_engine.algorithms import fixmatch, freematch, marginmatch, multimatch, supervised  # noqa: F401,E402  (register)
from ssl_engine.algorithms.base import (  # noqa: F401
    ALGORITHMS,
    PseudoLabelConfig,
    SSLAlgorithm,
    StepOutput,
    pseudo_margin,
    register,
    strong_ce,
)
from ssl_engine.algorithms.multimatch import (  # noqa: F401,E402
    AGREE_NONE,
    AGREEMENT_TYPES,
    DISAGREE_BOTH,
    DISAGREE_NONE,
    DISAGREE_ONE,
    FIRST_EPOCH,
    HIGH_AGREE,
    LOW_AGREE,
    MultiMatch,
    apm_margins,
    apm_update,
    multimatch_targets,
    vote,
)
from ssl_engine.algorithms.policies import (  # noqa: F401,E402
    CurriculumMask,
    DistributionAlignment,
    SelfAdaptiveThreshold,
    aum_update,
    confidence_mask,
)
