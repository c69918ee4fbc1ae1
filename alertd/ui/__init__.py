"""The dashboard: server-rendered pages under ``ui.path`` (default /ui), see alertd/ui/views.py."""
from __future__ import annotations

from fastapi.staticfiles import StaticFiles

from . import views
from .render import HERE


def install(app, config) -> None:
    """Mount the dashboard on ``app`` unless ``ui.enabled`` is false."""
    if not config.ui.enabled:
        return
    router = views.make_router(config.ui.path)
    app.include_router(router)
    app.state.login_throttle = router.throttle  # what a test looks at: failed logins per address
    app.mount(config.ui.path + "/static", StaticFiles(directory=HERE / "static"), name="ui-static")
