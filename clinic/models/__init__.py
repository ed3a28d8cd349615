"""Every model, split by domain; MODELS lists them in creation order for init-db."""

from clinic.models.bookings import *  # noqa: F403
from clinic.models.bookings import BOOKING_MODELS
from clinic.models.consultations import *  # noqa: F403
from clinic.models.consultations import CONSULTATION_MODELS
from clinic.models.core import *  # noqa: F403
from clinic.models.core import CORE_MODELS
from clinic.models.drugs import *  # noqa: F403
from clinic.models.drugs import DRUG_MODELS
from clinic.models.mfa import MFA_MODELS
from clinic.models.patients import *  # noqa: F403
from clinic.models.patients import PATIENT_MODELS
from clinic.models.phrases import *  # noqa: F403
from clinic.models.phrases import PHRASE_MODELS
from clinic.models.referrals import *  # noqa: F403
from clinic.models.referrals import REFERRAL_MODELS
from clinic.models.service_days import *  # noqa: F403
from clinic.models.service_days import SERVICE_DAY_MODELS

MODELS = [
    *CORE_MODELS, *MFA_MODELS, *PATIENT_MODELS, *REFERRAL_MODELS, *SERVICE_DAY_MODELS,
    *BOOKING_MODELS, *DRUG_MODELS, *PHRASE_MODELS, *CONSULTATION_MODELS,
]  # fmt: skip
