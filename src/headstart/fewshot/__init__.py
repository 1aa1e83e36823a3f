"""Few-shot and zero-shot transfer: a useful model from a few examples per class, or from
the class names alone.

* :class:`PrototypeHead` (``--strategy prototype``): nearest class centroid on cached
  features with the SimpleShot transform, or a cosine classifier; hyper-parameters by
  leave-one-out, every label in the final model.
* :func:`add_class` / :func:`remove_class`: edit a prototype bundle without retraining.
* :func:`zeroshot` (``--strategy zeroshot``): classes from their names alone, by the
  cosine similarity of text and label embeddings (MiniLM offline; CLIP / SigLIP for
  images); ``--strategy zeroshot_prior``: the label embeddings as a prior the first
  examples refine.
* ``--strategy setfit``: contrastive fine-tuning of the sentence encoder on pairs of
  labelled examples (:mod:`headstart.fewshot._contrastive`), then a logistic head.
* :func:`fewshot_eval`: N-way K-shot episodes on cached features, with 95% intervals.
"""

from headstart.fewshot._edit import EditError, add_class, remove_class
from headstart.fewshot._episodes import EpisodeError, episode_accuracies, fewshot_eval
from headstart.fewshot._labels import DEFAULT_TEMPLATE, LabelError, parse_labels
from headstart.fewshot._prototype import (
    METRICS,
    TRANSFORMS,
    PrototypeHead,
    fit_prototype_head,
    fit_prototypes,
    fit_scale,
    loo_accuracy,
    loo_similarities,
)
from headstart.fewshot._zeroshot import (
    DEFAULT_TEMPERATURE,
    ZeroShotResult,
    calibration,
    label_embeddings,
    zeroshot,
    zeroshot_head,
)

__all__ = [
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TEMPLATE",
    "METRICS",
    "TRANSFORMS",
    "EditError",
    "EpisodeError",
    "LabelError",
    "PrototypeHead",
    "ZeroShotResult",
    "add_class",
    "calibration",
    "episode_accuracies",
    "fewshot_eval",
    "fit_prototype_head",
    "fit_prototypes",
    "fit_scale",
    "label_embeddings",
    "loo_accuracy",
    "loo_similarities",
    "parse_labels",
    "remove_class",
    "zeroshot",
    "zeroshot_head",
]
