"""What every FHIR export shares: the JSON answer hospital systems read."""

from flask import Response, current_app


def fhir_response(resource: dict, filename: str) -> Response:
    """A FHIR resource (a Bundle) as application/fhir+json, to open or save as `filename`."""
    response = current_app.response_class(
        current_app.json.dumps(resource), mimetype="application/fhir+json"
    )
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
