"""Every model, split by domain; MODELS lists them in creation order for init-db."""

from clinic.models.core import *  # noqa: F403
from clinic.models.core import CORE_MODELS
from clinic.models.mfa import MFA_MODELS
from clinic.models.patients import *  # noqa: F403
from clinic.models.patients import PATIENT_MODELS
from clinic.models.referrals import *  # noqa: F403
from clinic.models.referrals import REFERRAL_MODELS

MODELS = [*CORE_MODELS, *MFA_MODELS, *PATIENT_MODELS, *REFERRAL_MODELS]
