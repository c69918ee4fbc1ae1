"""The dashboard: server-rendered pages under ``ui.path`` (default /ui), see alertd/ui/views.py."""
from __future__ import annotations

from pathlib import Path

from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent


def install(app, config) -> None:
    """Mount the dashboard on ``app`` unless ``ui.enabled`` is false."""
    if not config.ui.enabled:
        return
    from . import views
    app.include_router(views.make_router(config.ui.path))
    app.mount(config.ui.path + "/static", StaticFiles(directory=HERE / "static"), name="ui-static")
