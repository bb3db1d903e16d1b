"""``create_app(settings)``: the studio's FastAPI app (REST API under /api, pages, static)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from muselab import __version__
from muselab.errors import MuselabError
from muselab.store import gallery, jobs
from muselab.store.db import connect
from muselab.store.gallery import ConflictError, NotFoundError
from muselab.studio import security
from muselab.studio.engine import Engine
from muselab.studio.settings import Settings
from muselab.studio.uploads import UploadError

log = logging.getLogger("muselab.studio")
HERE = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None) -> FastAPI:
    """The studio app; creates or migrates the database at once."""
    settings = settings or Settings()
    conn = connect(settings.db_path())
    gallery.init(conn)
    jobs.init(conn)
    conn.close()
    app = FastAPI(title="muselab studio", version=__version__,
                  description="Train, generate, breed, explore and rate. Every long task is a "
                              "job in a persistent queue run by a separate worker process.")
    app.state.settings = settings
    app.state.engine = Engine(settings)
    _errors(app)
    security.install(app, settings)  # host, token, origin, size, rate; headers
    from muselab.studio.routers import (
        crossmodal,
        generate,
        models,
        music,
        pages,
        poetry,
        ratings,
        style,
        train,
    )
    from muselab.studio.routers import gallery as r_gallery
    from muselab.studio.routers import jobs as r_jobs

    # crossmodal before pages: its page route passes the job kinds to the template
    for module in (models, generate, r_gallery, ratings, r_jobs, train, style, music, poetry,
                   crossmodal, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app


def _error(status: int, message: str, detail: object = None) -> JSONResponse:
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


def _errors(app: FastAPI) -> None:
    """Every error is JSON ``{"error": "<what to do>", "detail": ...}``."""

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(UploadError)
    async def upload(request: Request, exc: UploadError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(MuselabError)
    async def user_error(request: Request, exc: MuselabError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        parts = []
        for e in errors[:3]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "request"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
        return _error(422, "; ".join(parts), detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint {request.url.path}; the API is documented at /docs"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path} (see /docs)"
        return _error(exc.status_code, message)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}; please report it "
                           "with the server log")
