"""Clinic: community family-doctor clinics and their hub hospital."""

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config → inputs → db → babel → security → htmx → blueprints."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    from clinic import config as settings

    app.config.update(settings.DEFAULTS)
    app.config.update(settings.from_environment(Path(app.instance_path)))
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.secret_key(Path(app.instance_path))

    from clinic import assets, cli, db, errors, forms, htmx, i18n, inputs, security

    if proxies := app.config.get("TRUSTED_PROXIES"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    inputs.init_app(app)
    db.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    assets.init_app(app)
    htmx.init_app(app)
    forms.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    _register_blueprints(app)
    return app


def _register_blueprints(app: Flask) -> None:
    """The core's pages, then each domain (its blueprint and what it adds to the core)."""
    from clinic import consultations, patients, referrals, service_days
    from clinic.admin.views import bp as admin
    from clinic.auth.views import bp as auth
    from clinic.auth.views import login_manager
    from clinic.today.views import bp as today

    login_manager.init_app(app)
    for blueprint in (auth, today, admin):
        app.register_blueprint(blueprint)
    for domain in (patients, referrals, service_days, consultations):
        domain.init_app(app)
