"""The drug catalogue and the phrase library: pages, the as-you-type search, the pickers."""

from flask import Blueprint

catalogue_bp = Blueprint("catalogue", __name__, url_prefix="/consultations")
