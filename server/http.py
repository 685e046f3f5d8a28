"""HTTP plumbing shared by every route: the error and auth middlewares, the caller's language, JSON bodies,
forms and uploads parsed in (through ``parsing``'s limits), JSON out."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import pydantic
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

from . import idempotency
from .accesslog import loggable_path
from .appkeys import DATABASE, ERROR_PAGE, SETTINGS
from .errors import (
    N_,
    BadRequest,
    DatabaseUnavailable,
    ErrorCode,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    TelemedError,
    Unauthenticated,
    ValidationFailed,
)
from .i18n import SUPPORTED_LOCALES, negotiate, translations
from .identity.auth import CALLER, authenticate, is_public, token_from, waits_for_password_change
from .parsing import load_json, multipart_problem, parse_id

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=pydantic.BaseModel)
Result = TypeVar("Result")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_JSON_BODY = 1024 * 1024
LANG_COOKIE = "telemed_lang"


def is_api(request: web.Request) -> bool:
    """The REST API, the FHIR API and the metrics: answered in JSON (never a page or a redirect to the login;
    a scraper refused reads why)."""
    return request.path.startswith("/api/") or is_fhir(request) or request.path == "/metrics"


def is_fhir(request: web.Request) -> bool:
    return request.path == "/fhir" or request.path.startswith("/fhir/")


# The FHIR issue type (http://hl7.org/fhir/valueset-issue-type.html) of each status the server answers with.
ISSUE_TYPES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               409: "conflict", 410: "deleted", 413: "too-costly", 422: "processing", 429: "throttled",
               503: "transient"}


def operation_outcome(status: int, code: str, message: str) -> web.Response:
    """An error of the FHIR API, as FHIR says errors are: an OperationOutcome, our code as its diagnostics."""
    body = {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": ISSUE_TYPES.get(status, "exception"), "details": {"text": message},
        "diagnostics": code}]}
    response = json_response(body, status=status)
    response.content_type = "application/fhir+json"
    return response


def locale_for(request: web.Request) -> str:
    """The user's own setting, else the language they picked on this browser, else Accept-Language."""
    caller = request.get(CALLER)
    if caller is not None and caller.user.locale in SUPPORTED_LOCALES:
        return caller.user.locale
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in SUPPORTED_LOCALES:
        return chosen
    return negotiate(request.headers.get("Accept-Language"), request.app[SETTINGS].default_locale)


def translator(request: web.Request) -> Callable[[str], str]:
    """gettext in the caller's language, for server code that puts things into words."""
    return translations(locale_for(request)).gettext


def path_id(request: web.Request, name: str) -> int:
    """The id in the path's ``{name}`` (``consent_id``...): 400 ``bad-id`` for anything but ASCII digits
    naming a possible row (see ``parsing.parse_id``)."""
    raw = request.match_info[name]
    number = parse_id(raw)
    if number is None:
        raise BadRequest(f"{raw[:40]!r} is not a {name.removesuffix('_id')} id.", code="bad-id")
    return number


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as JSON: a response model (``outputs.Out``) as its fields say, by their JSON names."""
    if isinstance(data, pydantic.BaseModel):
        data = data.model_dump(mode="json", by_alias=True)
    return web.json_response(data, status=status, dumps=lambda obj: json.dumps(obj, default=str, ensure_ascii=False))


async def parse_body(request: web.Request, model: type[Model]) -> Model:
    """Read a JSON body into ``model``: 400 if it is not JSON or breaks the limits of ``parsing.load_json``,
    422 naming each field that is wrong."""
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise BadRequest(f"The request body is larger than {MAX_JSON_BODY} bytes.", code="body-too-large")
    body = await request.read()
    if len(body) > MAX_JSON_BODY:  # sent chunked, without a Content-Length
        raise BadRequest(f"The request body is larger than {MAX_JSON_BODY} bytes.", code="body-too-large")
    data = load_json(body)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise refusal(exc) from None


def parse_form(values: Mapping[str, str], model: type[Model]) -> Model:
    """A form's fields into ``model``, as ``parse_body`` reads a JSON body, so a page keeps the API's limits:
    422 naming each field that is wrong. Fields the model does not name, and empty ones, are left out."""
    try:
        return model.model_validate({k: v for k, v in values.items() if k in model.model_fields and v != ""})
    except pydantic.ValidationError as exc:
        raise refusal(exc) from None


def validation_fields(exc: pydantic.ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(name, error["msg"])
    return fields


def refusal(exc: pydantic.ValidationError) -> ValidationFailed:
    """pydantic's refusal as ours: each field's English reason (the API's), and its error type and context
    (for the pages, which put it in the reader's words)."""
    kinds: dict[str, tuple[str, dict[str, Any]]] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "body"
        context = dict(error.get("ctx") or {})
        if "error" in context:  # a ValueError raised by a validator: its message, marked N_ where raised
            context["error"] = str(context["error"])
        kinds.setdefault(name, (error["type"], context))
    return ValidationFailed(validation_fields(exc), kinds=kinds)


async def answer_once(request: web.Request, owner: str, body: pydantic.BaseModel | None,
                      render: Callable[[Result], Awaitable[idempotency.Answer]],
                      operation: Callable[[idempotency.Reply[Result]], Awaitable[object]]) -> web.Response:
    """Carry out a creating operation once per ``Idempotency-Key`` (server/idempotency.py), if the request
    has one (400 naming the header if it is malformed): when the key came before with the same request, the
    answer given then, marked ``Idempotent-Replayed: true``; with another request, 422. Else ``operation``,
    handed a Reply that its commit puts into words with ``render`` and stores with its change; the answer is
    the one stored. The face still only parses, calls and renders: the operation's own transaction holds the
    key, and ``owner`` (``idempotency.of_user``...) keeps one caller's keys apart from another's."""
    once = idempotency.Once.of(request.headers.get(idempotency.KEY_HEADER), owner, request.method, request.path,
                               body.model_dump(mode="json") if body is not None else None)
    database = request.app[DATABASE]
    if once is not None and (answer := await idempotency.stored(database, once)) is not None:
        return _answer_response(answer, replayed=True)
    reply = idempotency.Reply(render, once)
    try:
        await operation(reply)
    except idempotency.KeyInUse:  # the first request with this key committed while this one waited for it
        assert once is not None
        if (answer := await idempotency.stored(database, once)) is None:
            raise
        return _answer_response(answer, replayed=True)
    assert reply.answer is not None, "the operation commits through idempotency.commit"
    return _answer_response(reply.answer, replayed=False)


def _answer_response(answer: idempotency.Answer, *, replayed: bool) -> web.Response:
    response = web.Response(text=answer.text, status=answer.status, content_type="application/json")
    if replayed:
        response.headers[idempotency.REPLAYED_HEADER] = "true"
    return response


def same_origin(origin: str | None, host: str) -> bool:
    """Whether a request with this ``Origin`` header came from a page served by ``host`` (the Host header)."""
    if origin is None or origin == "null":
        return origin is None  # no Origin: not a browser form, or a same-origin GET-style navigation
    try:
        sent, here = URL(origin), URL(f"//{host}")
        # A Host without a port is the default port of the scheme the browser used, which same-origin means
        # the Origin's scheme (comparing yarl's authority would see "example.org:443" != "example.org").
        return (sent.scheme in ("http", "https") and sent.host is not None and sent.host == here.host
                and sent.port == (here.explicit_port or sent.with_port(None).port))
    except ValueError:  # an Origin (or Host) yarl cannot read is no proof of coming from here
        return False


def _same_origin(request: web.Request) -> bool:
    return same_origin(request.headers.get("Origin"), request.host)


def _error_answer(request: web.Request, error: TelemedError) -> web.Response:
    if is_fhir(request):
        response = operation_outcome(error.status, error.code, error.to_json()["error"]["message"])
        response.headers.update(error.headers)
        return response
    response = json_response(error.to_json(), status=error.status) if is_api(request) \
        else request.app[ERROR_PAGE](request, error)
    response.headers.update(error.headers)
    return response


# aiohttp's own refusals (no route, no such method) answered in the API's shape, with the table's codes.
_HTTP_LAYER_CODES = {kind.status: kind.code for kind in (ErrorCode.NOT_FOUND, ErrorCode.METHOD_NOT_ALLOWED)}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place errors become answers: JSON for the API, a redirect or an error page for pages. A database
    that cannot be reached is a 503 ``database-unavailable`` with Retry-After on every route, not a fault of
    ours: no traceback (``Database.down`` logs the outage once)."""
    try:
        if problem := multipart_problem(request.headers.get(hdrs.CONTENT_TYPE, "")):
            # Refused here for every route: without a boundary, request.post() and request.multipart()
            # raise ValueError in whichever handler reads the form.
            raise BadRequest(problem, code="bad-multipart")
        return await handler(request)
    except TelemedError as exc:
        if isinstance(exc, Unauthenticated) and not is_api(request):
            target = f"/login?next={quote(request.path_qs, safe='')}&reason={exc.code}"
            raise web.HTTPSeeOther(location=target) from None
        return _error_answer(request, exc)
    except web.HTTPException as exc:
        if is_api(request) and exc.status >= 400:
            code = _HTTP_LAYER_CODES.get(exc.status, ErrorCode.HTTP_ERROR.code)
            if is_fhir(request):
                return operation_outcome(exc.status, code, exc.reason)
            return json_response({"error": {"code": code, "message": exc.reason}}, status=exc.status)
        if isinstance(exc, web.HTTPNotFound) and not exc.text.startswith("<"):
            return _error_answer(request, NotFound(N_("There is no page at this address.")))
        if isinstance(exc, web.HTTPMethodNotAllowed):
            return _error_answer(request, MethodNotAllowed(N_("This page cannot be opened that way."),
                                                           allowed=exc.allowed_methods))
        raise
    except Exception as exc:
        database = request.app.get(DATABASE)
        if database is not None and database.down(exc):  # logged once per outage, not once per request
            return _error_answer(request, DatabaseUnavailable())
        log.exception("unhandled error on %s %s", request.method, loggable_path(request.path))  # no guest link
        return _error_answer(request, TelemedError(N_("Something went wrong on the server; it has been logged.")))


CHANGE_PAGE = "/account/password"  # where a user with a temporary password is sent by every page


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Deny by default: every route not marked @public needs a valid token; roles are checked per handler."""
    if request.match_info.http_exception is not None and not is_api(request):
        # No such page (or method): the error page is the caller's, in their language, if they are logged in.
        with contextlib.suppress(TelemedError):
            if token_from(request)[0] is not None:
                request[CALLER] = await authenticate(request)
    if is_public(request):
        return await handler(request)
    request[CALLER] = who = await authenticate(request)
    _, source = token_from(request)
    if source == "cookie" and request.method not in {"GET", "HEAD", "OPTIONS"} and not _same_origin(request):
        raise Forbidden(N_("Cross-site request refused."), code="cross-site")
    if waits_for_password_change(request, who):
        if is_api(request):
            raise Forbidden(N_("Your password is a temporary one: set a new password first."),
                            code="password-change-required")
        # back to the page asked for once the password is the user's own (a form's post cannot be repeated)
        back = f"?next={quote(request.path_qs, safe='/')}" if request.method == "GET" else ""
        raise web.HTTPSeeOther(CHANGE_PAGE + back)
    return await handler(request)


@contextlib.contextmanager
def _malformed_upload() -> Iterator[None]:
    """aiohttp's multipart reader says a body is malformed with ValueError or a 400 HttpProcessingError."""
    try:
        yield
    except (ValueError, HttpProcessingError):
        raise BadRequest(N_("The upload is not a well-formed multipart/form-data body."),
                         code="bad-upload") from None


async def read_form(request: web.Request) -> dict[str, str]:
    """A page's form fields as text (a urlencoded or multipart body): 400 ``bad-upload`` if the body is
    malformed, which aiohttp reports as ValueError, not as an answer."""
    with _malformed_upload():
        form = await request.post()
    return {name: str(value) for name, value in form.items()}


async def file_upload(request: web.Request, field: str = "file") -> tuple[str, AsyncIterator[bytes]]:
    """The file in the multipart body's part ``field``: its name as sent, and its bytes a chunk at a time
    (400 if the body is not multipart, has no such part, or stops before the part's closing boundary)."""
    if not request.content_type.startswith("multipart/form-data"):  # error_middleware checked the boundary
        raise BadRequest(N_("Send the file as multipart/form-data, in a field named file."), code="bad-upload")
    with _malformed_upload():
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and not (isinstance(part, BodyPartReader) and part.name == field):
            part = await reader.next()
    if part is None or not isinstance(part, BodyPartReader) or not part.filename:
        raise BadRequest(N_("Send the file as multipart/form-data, in a field named file."), code="bad-upload")

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            with _malformed_upload():
                chunk = await part.read_chunk(256 * 1024)
            if not chunk and not part.at_eof():  # the body stopped before the part's closing boundary
                raise BadRequest(N_("The upload ended before the file did; send it again."),
                                 code="upload-cut-short")
            if not chunk:
                return
            yield chunk
    return part.filename, chunks()
