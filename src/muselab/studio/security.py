"""The studio's defences, in one middleware: who may call, from where, how often, how much.

In order, for every request:

1. **Host** (DNS rebinding, as in Jupyter's ``allow_remote_access`` check): without a token
   the studio only answers requests addressed to a loopback name, so a web page whose
   domain is made to resolve to 127.0.0.1 cannot drive it.
2. **Token**: with ``--token`` (required to bind anything but loopback) every request
   carries it (``Authorization: Bearer``, the cookie, or ``?token=`` once); compared with
   :func:`hmac.compare_digest` (constant time).
3. **Origin** (CSRF): a state-changing request (POST, PUT, PATCH, DELETE) sent by a browser
   from another origin is refused; CORS stays closed (no ``Access-Control-Allow-*``
   header is ever sent), so other sites cannot read answers either.
4. **Size**: a declared body larger than the upload limit is refused before it is read
   (uploads are also counted while streamed, :func:`muselab.studio.uploads.copy_limited`).
5. **Rate**: state-changing requests per client pass a token bucket (``rate_per_min``,
   bursts of ``rate_burst``); beyond it ``429`` with ``Retry-After``.

Answers carry a Content-Security-Policy without inline scripts (:data:`CSP`), so
text that slipped into a page unescaped still could not run, plus ``nosniff`` and
``frame-ancestors 'none'`` (no clickjacking).
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from muselab.studio.settings import LOCAL_HOSTS, Settings

TOKEN_COOKIE = "muselab_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Starlette's TestClient addresses the app as ``http://testserver``; no browser can be
#: sent to that name by a web page, so it is as safe as the loopback names.
TEST_HOST = "testserver"
#: /docs and /redoc load Swagger UI and ReDoc from a CDN with inline scripts.
DOC_PATHS = ("/docs", "/redoc")
#: No inline scripts or handlers (the way injected HTML would run). 'unsafe-eval' stays: the
#: studio never evaluates strings, but browser test drivers (Playwright's wait_for_function)
#: do, and an eval sink would need code of ours that passes user text to it.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; "
       "style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cross-Origin-Opener-Policy": "same-origin"}
Next = Callable[[Request], Awaitable[Response]]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The studio's error shape: ``{"error": "<what to do>", "detail": null}``."""
    return JSONResponse({"error": message, "detail": None}, status_code=status, headers=headers)


def same_secret(given: str, token: str) -> bool:
    """Constant-time comparison (the time taken does not reveal how much matched)."""
    return hmac.compare_digest(given.encode(), token.encode())


class RateLimiter:
    """Token buckets per client: ``burst`` requests at once, refilled at ``per_min``/60 s.

    Thread-safe; remembers at most ``max_clients`` clients (the least recently seen go)."""

    def __init__(self, per_min: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate, self.burst, self.max_clients = per_min / 60.0, float(burst), max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """0 if ``client`` may go on now, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, then = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def host_name(host_header: str) -> str:
    """``localhost`` from ``localhost:8000``, ``::1`` from ``[::1]:8000``."""
    return (urlsplit(f"//{host_header}").hostname or "").lower()


def _given_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""


def _cross_origin(request: Request) -> bool:
    """A browser request made by a page of another origin (scheme, host and port)."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not sent by a browser page (curl, scripts, the TestClient)
    parts = urlsplit(origin)
    return parts.netloc.lower() != request.headers.get("host", "").lower()


def check(request: Request, settings: Settings, limiter: RateLimiter) -> JSONResponse | None:
    """The refusal for ``request``, or None to let it through."""
    host = host_name(request.headers.get("host", ""))
    if not settings.token and host not in {*LOCAL_HOSTS, settings.host, TEST_HOST}:
        return error(403, f"this studio answers only at http://127.0.0.1:{settings.port}/ "
                          f"(the request was addressed to {host!r}); serving other names "
                          "needs --token")
    if settings.token and not same_secret(_given_token(request), settings.token):
        return error(401, "this studio needs its token: open the URL printed by `muselab "
                          "studio` (it ends in ?token=...) or send 'Authorization: Bearer TOKEN'")
    if request.method not in UNSAFE:
        return None
    if _cross_origin(request):
        return error(403, f"{request.method} from another web site "
                          f"({request.headers.get('origin', 'cross-site')}) is refused")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + 2**20:
        return error(413, f"the request body ({int(declared) // 2**20} MB) is larger than the "
                          f"{settings.max_upload_mb} MB upload limit (MUSELAB_MAX_UPLOAD_MB)")
    wait = limiter.take(request.client.host if request.client else "?")
    if wait:
        return error(429, f"too many requests: at most {settings.rate_per_min} changes a minute "
                          f"(MUSELAB_RATE_PER_MIN); try again in {math.ceil(wait)} s",
                     {"Retry-After": str(math.ceil(wait))})
    return None


def install(app: FastAPI, settings: Settings) -> None:
    """Add the checks and the response headers to ``app``."""
    limiter = RateLimiter(settings.rate_per_min, settings.rate_burst)

    @app.middleware("http")
    async def guard(request: Request, call_next: Next) -> Response:
        refused = check(request, settings, limiter)
        response = refused or await call_next(request)
        response.headers.update(HEADERS)
        if not request.url.path.startswith(DOC_PATHS):
            response.headers["Content-Security-Policy"] = CSP
        if refused is None and settings.token and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="strict")
        return response
