"""Claims of the digits chapter: memorizing five digits and generalizing from all 1,797.

Every claim compares a measurement on a trained model with a bound, and its negative control
applies the same comparison to the other model (or to a set of digits that breaks the negative
cosine hypothesis). Models are trained once per process (``reludae.experiments.digits`` caches
them), with ``Settings.seed`` shifting the digit selection and the training seeds and
``Settings.full`` training several seeds and reporting the worst.
"""

from ..experiments import digits as ed
from .registry import Outcome, claim

_ALIGNED_SOURCE = (
    "0.99 (8.1 degrees) is the book's threshold for a column that stores a point "
    "(metrics.storage_report); the closed form's columns have cosine exactly 1 with their digits"
)


def _models(settings):
    return ed.memorizer(settings.seed, settings.full), ed.generalizer(settings.seed, settings.full)


@claim(
    id="digits.memorized-columns",
    result="Corollary 3.2",
    chapter="digits",
    statement=(
        "Trained on five digits with pairwise negative cosines (p = 32), every significant column "
        "has cosine above 0.99 with a training digit and every digit has such a column"
    ),
    tolerance_source=_ALIGNED_SOURCE,
    control_setting="the same width trained on all 1,797 digits, n >> p",
)
def memorized_columns(settings, control):
    memorizer, generalizer = _models(settings)
    model = generalizer if control else memorizer
    return Outcome.above(ed.storage_match(model), ed.ALIGNED, model=model.name)


@claim(
    id="digits.memorized-product",
    result="Corollary 3.2",
    chapter="digits",
    statement=(
        "Trained on five digits with pairwise negative cosines, W1 W2^T equals the memorization "
        "closed form W W^T with r_i = sqrt((|x_i|^2 - n lam) / (|x_i|^4 + sigma^2 |x_i|^2))"
    ),
    tolerance_source=(
        "a quarter of the relative change of the closed form's W W^T when lam is set to zero, "
        "so a pass resolves the penalty's shrinkage of the stored digits"
    ),
    control_setting="one digit replaced by the most similar digit of an unused class (a positive cosine)",
)
def memorized_product(settings, control):
    if control:
        model = ed.similar_memorizer(settings.seed, settings.full)
    else:
        model = ed.memorizer(settings.seed, settings.full)
    error, tolerance, penalty_effect = ed.product_error(model)
    return Outcome.below(error, tolerance, model=model.name, penalty_effect=penalty_effect)


@claim(
    id="digits.generalized-columns",
    result="Generalization, n >> p",
    chapter="digits",
    statement=(
        "Trained on all 1,797 digits with the same width p = 32, no significant column has cosine "
        "above 0.99 with any training digit"
    ),
    tolerance_source=_ALIGNED_SOURCE,
    control_setting="the memorizer of five digits with pairwise negative cosines",
)
def generalized_columns(settings, control):
    memorizer, generalizer = _models(settings)
    model = memorizer if control else generalizer
    return Outcome.below(ed.largest_column_match(model), ed.ALIGNED, model=model.name)


@claim(
    id="digits.memorized-spiky",
    result="Corollary 3.2",
    chapter="digits",
    statement=(
        "After parallel units are merged, one unit carries at least 90 % of the representation "
        "of a memorized training digit (median top-1 share >= 0.9)"
    ),
    tolerance_source=(
        "the closed form's representation of a training digit is one-hot (share 1); 0.9 is the "
        "share the book calls sparse storage (metrics.StorageReport.sparse)"
    ),
    control_setting="the generalizer trained on all 1,797 digits",
)
def memorized_spiky(settings, control):
    memorizer, generalizer = _models(settings)
    model = generalizer if control else memorizer
    return Outcome.above(ed.median_statistic(model, "top1_share", worst="min"), ed.SPIKY_SHARE, model=model.name)


@claim(
    id="digits.generalized-balanced",
    result="Balanced representations",
    chapter="digits",
    statement=(
        "After parallel units are merged, the generalizer's representations of its training digits "
        "spread over several units: median participation ratio >= 2"
    ),
    tolerance_source=(
        "a one-hot representation has participation ratio 1 and k equal units have k; "
        "2 asks for at least two units' worth of comparable activity"
    ),
    control_setting="the memorizer of five digits with pairwise negative cosines",
)
def generalized_balanced(settings, control):
    memorizer, generalizer = _models(settings)
    model = memorizer if control else generalizer
    value = ed.median_statistic(model, "participation", worst="min")
    return Outcome.above(value, ed.BALANCED_PARTICIPATION, model=model.name)


@claim(
    id="digits.memorized-split",
    result="Corollary 3.2",
    chapter="digits",
    statement=(
        "Without merging, gradient training spreads each memorized digit over several parallel "
        "units: the median top-1 share of the memorizer's unit-level representations is below 0.9"
    ),
    tolerance_source="the same 0.9 threshold as digits.memorized-spiky, applied unit by unit",
    control_setting="the closed-form minimizer of Corollary 3.2, one column per digit",
)
def memorized_split(settings, control):
    memorizer = ed.memorizer(settings.seed, settings.full)
    if control:
        share = ed.closed_form_top1_share(memorizer.X)
    else:
        share = ed.median_statistic(memorizer, "top1_share", merged=False, worst="max")
    return Outcome.below(share, ed.SPIKY_SHARE, model="closed form" if control else memorizer.name)
