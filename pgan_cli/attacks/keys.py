"""Key names of ``pgan attack``'s JSON result and scores file, defined once.

Reports, audits and tests import these constants instead of repeating strings
(as torch-fidelity's ``KEY_METRIC_FID``). The JSON layout::

    {"attacks":   {"<method>": {"auc", "auc_ci", "tpr_at_fpr": {"0.001", "0.01", "0.1"},
                                "advantage", "balanced_accuracy", "epsilon_lower_bound", ...,
                                "targets": [...] (attacks scored over chosen targets: shadow)}},
     "distances": {"dcr": {...}, "dcr_share", "nndr", "nndr_holdout", "nnaa", "nnaa_privacy_loss",
                   "authenticity", "data_copying_ct", "near_copies",
                   "eps_identifiability": {"members", "holdout", "weighted": {...}}},
     "sets":      {...},
     "provenance": {...}}

A gate path such as ``privacy.attacks.dcr.auc`` in a report refers to
``result[KEY_ATTACKS]["dcr"][KEY_AUC]``.
"""

from __future__ import annotations

from pgan_cli.formats import ATTACK_SCORES

# ---- top level ------------------------------------------------------------------------------
KEY_ATTACKS = "attacks"
KEY_DISTANCES = "distances"
KEY_SETS = "sets"
KEY_PROVENANCE = "provenance"
KEY_SKIPPED = "skipped"

# ---- per attack ------------------------------------------------------------------------------
KEY_AUC = "auc"
KEY_AUC_CI = "auc_ci"
KEY_TPR_AT_FPR = "tpr_at_fpr"
FPR_LEVELS = (0.001, 0.01, 0.1)
FPR_KEYS = tuple(str(f) for f in FPR_LEVELS)  # "0.001", "0.01", "0.1"
KEY_ADVANTAGE = "advantage"
KEY_BALANCED_ACCURACY = "balanced_accuracy"
KEY_EPSILON_LOWER_BOUND = "epsilon_lower_bound"
KEY_EPSILON_DETAILS = "epsilon_details"
KEY_N_MEMBERS = "n_members"
KEY_N_NON_MEMBERS = "n_non_members"
KEY_REFERENCE = "reference"
KEY_WHITE_BOX = "white_box"  # true: needs the generator or discriminator (the presets gate black-box only)
KEY_PARAMS = "params"
# attacks that score chosen targets (``Attack.targets``; shadow modelling): one object per target
KEY_TARGETS = "targets"                  # [{"source", "index", "member", "score", ...}]
KEY_TARGET_SOURCE = "source"             # "members" or "holdout"
KEY_TARGET_INDEX = "index"               # row in the --members or --holdout file
KEY_TARGET_MEMBER = "member"             # 1 member, 0 non-member (the truth the AUC is computed on)
KEY_TARGET_SCORE = "score"               # the attack's score (higher = member)
KEY_MEMBERSHIP_PROBABILITY = "membership_probability"  # shadow: the classifier's P(member)
KEY_TARGET_CHOSEN = "chosen"             # "exposed" (smallest DCR on its side) or "random"
KEY_TARGET_DCR = "dcr"                   # the target's distance to the closest released record
# shadow modelling's parameters (``attacks.shadow.params``)
KEY_SHADOW_MODELS = "shadow_models"
KEY_SHADOWS_TRAINED = "shadows_trained"
KEY_SHADOWS_REUSED = "shadows_reused"
KEY_SHADOW_VALIDATION_AUC = "shadow_validation_auc"  # the classifier on held-out shadow pairs
KEY_RECIPE = "recipe"
KEY_RECIPE_SHA256 = "recipe_sha256"
KEY_CPU_MINUTES_PER_TARGET = "cpu_minutes_per_target"
# logan-blackbox's parameters (``attacks.logan``): how its S-vs-R classifier was trained
KEY_MAX_STEPS = "max_steps"              # the step budget (the cost bound)
KEY_MIN_STEPS = "min_steps"              # steps before convergence may be declared
KEY_STEPS_RUN = "steps_run"              # steps actually run
KEY_BEST_STEP = "best_step"              # the step whose weights score (lowest training loss)
KEY_TRAINING_LOSS = "training_loss"      # that loss: class-balanced BCE on up to 2,048 rows of S and of R
KEY_CONVERGED = "converged"              # true: stopped because the loss stopped falling, not at max_steps
ATTACK_KEYS = (KEY_AUC, KEY_AUC_CI, KEY_TPR_AT_FPR, KEY_ADVANTAGE, KEY_BALANCED_ACCURACY,
               KEY_EPSILON_LOWER_BOUND)

# ---- distances -------------------------------------------------------------------------------
KEY_DCR = "dcr"
KEY_DCR_SYNTHETIC_TO_MEMBERS = "synthetic_to_members"
KEY_DCR_HOLDOUT_TO_MEMBERS = "holdout_to_members"
KEY_DCR_SYNTHETIC_TO_HOLDOUT = "synthetic_to_holdout"
KEY_P5 = "p5"
KEY_MEDIAN = "median"
KEY_MEAN = "mean"
KEY_DCR_SHARE = "dcr_share"
KEY_NNDR = "nndr"                  # d1/d2 of each synthetic record's two nearest members: p5, median, mean
KEY_NNDR_HOLDOUT = "nndr_holdout"  # the same for each holdout record (the baseline of a fresh sample)
KEY_NNAA = "nnaa"
KEY_NNAA_PRIVACY_LOSS = "nnaa_privacy_loss"
KEY_AUTHENTICITY = "authenticity"
KEY_DATA_COPYING_CT = "data_copying_ct"
KEY_NEAR_COPIES = "near_copies"
# epsilon-identifiability (Yoon et al., ADS-GAN, JBHI 2020): {"members", "holdout", "weighted": {"members",
# "holdout", "features", "zero_entropy_features"}}; members: share of members whose nearest synthetic record
# is closer than their nearest other member; holdout: share of holdout records whose nearest synthetic record
# is closer than their nearest member (the baseline); weighted: the same with each feature scaled by 1/H(X_j)
KEY_EPS_IDENTIFIABILITY = "eps_identifiability"
KEY_EPS_MEMBERS = "members"
KEY_EPS_HOLDOUT = "holdout"
KEY_EPS_WEIGHTED = "weighted"
KEY_EPS_FEATURES = "features"                            # features in the space
KEY_EPS_ZERO_ENTROPY_FEATURES = "zero_entropy_features"  # features with H(X_j) = 0, given weight 0
DISTANCE_KEYS = (KEY_DCR, KEY_DCR_SHARE, KEY_NNDR, KEY_NNDR_HOLDOUT, KEY_NNAA, KEY_NNAA_PRIVACY_LOSS,
                 KEY_AUTHENTICITY, KEY_DATA_COPYING_CT, KEY_NEAR_COPIES, KEY_EPS_IDENTIFIABILITY)

# ---- scores file (HDF5, ``--scores``) --------------------------------------------------------
SCORES_GROUP = "scores"                       # scores/<method>: float64 (n_candidates,)
SCORES_MEMBERSHIP = "membership"              # int8 (n_candidates,): 1 member, 0 non-member
SCORES_CANDIDATE_INDEX = "candidate_index"    # int64: row in the members or non-members file
SCORES_CANDIDATE_SOURCE = "candidate_source"  # int8: 1 from --members, 0 from --non-members
SCORES_DISTANCES_GROUP = "distances"
SCORES_DCR_SYNTHETIC = "dcr_synthetic_to_members"   # float64 (|S|,): d(s, M)
SCORES_DCR_HOLDOUT = "dcr_holdout_to_members"       # float64 (|H|,): d(h, M)
SCORES_DCR_SYNTHETIC_HOLDOUT = "dcr_synthetic_to_holdout"  # float64 (|S|,): d(s, H)
SCORES_NEAREST_MEMBER = "nearest_member"            # int64 (|S|,): index of s's nearest member
SCORES_AUTHENTIC = "authentic"                      # int8 (|S|,): 1 authentic, 0 not
SCORES_TARGETS_GROUP = "targets"              # targets/<method>/{score, membership, candidate_index,
SCORES_TARGET_SCORE = "score"                 #   candidate_source}: attacks that score chosen targets
SCORES_FORMAT = ATTACK_SCORES
SCORES_FORMAT_VERSION = 1

# ---- distance details (the headline values above are plain numbers a gate can compare) -----
KEY_NEAR_COPY_PAIRS = "near_copy_pairs"          # [{"synthetic", "member", "distance"}], worst first
KEY_NEAR_COPY_THRESHOLD = "near_copy_threshold"  # 1st percentile of member-to-member NN distance
KEY_DETAILS = "details"
