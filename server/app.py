"""The application factory: ``create_app(settings)`` wires settings, database, keys, routes and pages."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from aiortc import RTCIceServer
from sqlalchemy.exc import SQLAlchemyError

from media.session import RelaySession
from media.workers import RelayWorkers, WorkerConfig
from signaling.errors import CloseCode
from signaling.events import RoomEvent
from signaling.grants import room_id_for
from signaling.hub import RoomHub
from signaling.log import LocalRoomLog
from signaling.outbox import CloseRequest
from signaling.redis_log import RedisRoomLog
from signaling.tasks import cancel_and_wait
from web import (
    STATIC_DIR,
    account_pages,
    admin_pages,
    audit_pages,
    codes,
    consultation_pages,
    hold_pages,
    nav,
    notification_pages,
    pages,
    patient_pages,
    recording_pages,
    referral_pages,
    room_pages,
    schedule_pages,
    supervision_pages,
    visit_pages,
)
from web.render import RENDERER, Renderer

from . import storage
from .accesslog import request_id_header, request_id_middleware
from .admin import account_sweep
from .api import admin as admin_api
from .api import attachments as attachments_api
from .api import audit_log as audit_api
from .api import auth as auth_api
from .api import availability as availability_api
from .api import bandwidth as bandwidth_api
from .api import calendar as calendar_api
from .api import consents as consents_api
from .api import consultations as consultations_api
from .api import docs as docs_api
from .api import fhir as fhir_api
from .api import health
from .api import holds as holds_api
from .api import metrics as metrics_api
from .api import patients as patients_api
from .api import recordings as recordings_api
from .api import referrals as referrals_api
from .api import reports as reports_api
from .api import rooms as rooms_api
from .api import supervision as supervision_api
from .api import visits as visits_api
from .appkeys import (
    AUDIT,
    DATABASE,
    ERROR_PAGE,
    HUB,
    KEYS,
    LOGIN_THROTTLE,
    METRICS,
    PASSWORDS,
    RECORDING_KEY,
    RELAYS,
    REPORTS,
    ROOMS,
    SETTINGS,
    STORAGE_PROBE,
)
from .audit import trail as audit_trail
from .client_address import client_address_middleware
from .consent import templates as consent_templates
from .consultations import recovery
from .consultations.chat import chat_store
from .consultations.recordings import DatabaseRecordingStore
from .db import Database
from .errors import SettingsError
from .http import auth_middleware, error_middleware
from .identity.login_throttle import InProcessThrottle
from .identity.passwords import PasswordChecker
from .identity.redis_throttle import RedisThrottle
from .identity.signing_keys import load_keyring, load_recording_key
from .metrics import (
    CountingThrottle,
    Metrics,
    count_audit_appends,
    metrics_middleware,
    watch_database,
    watch_hub,
    watch_recordings,
    watch_redis,
    watch_relays,
)
from .reports import signing as report_signing
from .reports.service import ReportTools
from .retention import purge
from .retention import schedule as retention_schedule
from .scheduling import reminders
from .settings import Settings

log = logging.getLogger(__name__)
RELAY_STOP_SECONDS = 10.0  # for relays to finish their recordings' files at shutdown

# Every module whose ``routes`` the app serves: the REST API, signaling, the pages, then the browser's copy of
# the protocol's codes (a generated module among the static ones, so it comes before the static files).
ROUTE_MODULES = (
    health, metrics_api, docs_api, audit_api, auth_api, availability_api, calendar_api, consultations_api, consents_api,
    patients_api, visits_api, bandwidth_api, recordings_api, referrals_api, reports_api, attachments_api, fhir_api,
    rooms_api, admin_api, holds_api, supervision_api,
    # before pages: /consultations/new must not be read as /consultations/{consultation_id}
    consultation_pages, patient_pages, schedule_pages, notification_pages,
    pages, room_pages, referral_pages, visit_pages, audit_pages, admin_pages, recording_pages, account_pages, codes,
    hold_pages, supervision_pages,
)

MEDIA_NODE_ROUTES = (health, metrics_api)  # a media node serves no user: its probes, and its metrics

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
])


async def prepare_database(database: Database, settings: Settings) -> None:
    """Bring the embedded database up to date; refuse to start on a shared one that is behind."""
    if settings.is_embedded_database:
        await database.upgrade()
        return
    current, head = await database.current_revision(), Database.head_revision()
    if current != head:
        raise SettingsError(
            f"The database schema is at revision {current or 'none'} but this version needs {head}: "
            "run `telemed db upgrade` first (TELEMED_DATABASE_URL names the database)."
        )


def create_app(settings: Settings, *, database: Database | None = None, warm_relays: bool = False) -> web.Application:
    """Build the application. Pass ``database`` to share one already prepared (the CLI does, after seeding);
    ``warm_relays``: start a relay worker at once rather than with the first relayed room (``telemed serve``).
    A media node (``TELEMED_NODE_ROLE=media``) runs only the relays other nodes hand it, and its probes."""
    media_only = settings.node_role == "media"
    if media_only and not settings.redis_url:
        raise SettingsError("TELEMED_NODE_ROLE=media needs TELEMED_REDIS_URL: a media node runs the relays of "
                            "rooms that other nodes serve, and learns of them through Redis.")
    # The metrics' middleware is outermost: it counts each answer as it finally went out.
    app = web.Application(middlewares=[metrics_middleware, request_id_middleware, client_address_middleware,
                                       error_middleware, auth_middleware, nav.unread_middleware],
                          client_max_size=2 * 1024 * 1024)
    app[SETTINGS] = settings
    app[METRICS] = metrics = Metrics()
    app[KEYS] = load_keyring(settings)
    app[RENDERER] = Renderer()
    app[ERROR_PAGE] = app[RENDERER].error_page
    # With Redis, every node counts the same failed logins; a lone node counts them in memory.
    app[LOGIN_THROTTLE] = CountingThrottle(
        RedisThrottle(settings.redis_url, prefix=settings.redis_prefix) if settings.redis_url
        else InProcessThrottle(), metrics)
    app[PASSWORDS] = PasswordChecker()
    app[RECORDING_KEY] = load_recording_key(settings)
    # Prepared once the database says whether the deployment is new (database_ctx); /readyz says if it cannot
    # be reached, is not mounted, or holds files sealed under another key.
    app[STORAGE_PROBE] = storage.Probe(settings.recordings_dir, app[RECORDING_KEY])
    app.on_cleanup.append(lambda app: _close_probe(app[STORAGE_PROBE]))
    # The signing certificate is read (or, for the demo, generated) now: a bad one stops start-up.
    app[REPORTS] = ReportTools(report_signing.load(settings), settings.recordings_dir, app[RECORDING_KEY],
                               settings.default_locale, report_signing.load_hospitals(settings))
    app[RELAYS] = {}
    # Each start is a run of its own: sockets, grace timers and relays of a run killed a moment ago are not
    # this run's, and the name tells the other nodes that the run before is gone. Its recordings name it.
    name = settings.node_id or secrets.token_hex(4)
    run = f"{name}.{secrets.token_hex(3)}"

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        db = database or Database(settings.database_url)
        settling: asyncio.Task[None] | None = None
        try:
            if database is None:
                await prepare_database(db, settings)
            app[DATABASE] = db
            count_audit_appends(metrics, db)
            watch_database(metrics, db)
            app[AUDIT] = audit_trail.Batcher(db)
            await _publish_consent_texts(db)
            settling = await _settle_storage(db, settings, app[RECORDING_KEY])
            await _recover_recordings(db, settings, app[RECORDING_KEY], run)
            yield
        finally:
            if settling is not None:
                await cancel_and_wait(settling)
            if AUDIT in app:
                await app[AUDIT].close()  # the entries still queued, before the database goes
            await db.close()

    async def signaling_ctx(app: web.Application) -> AsyncIterator[None]:
        # Redis connects lazily: a Redis that is down at start-up shows in /readyz and in refused joins,
        # and the node recovers by itself when it returns.
        room_log = RedisRoomLog(settings.redis_url, prefix=settings.redis_prefix) if settings.redis_url \
            else LocalRoomLog()
        store = DatabaseRecordingStore(app[DATABASE], settings.recordings_dir, app[RECORDING_KEY], node=run)
        watch_recordings(metrics, store)
        stun = [RTCIceServer(urls=server["urls"]) for server in settings.ice_servers
                if "username" not in server]  # the relay has a public address; it needs STUN at most

        workers = settings.relay_workers if settings.relay_workers is not None else _cores()
        async def recover(recording_ids: list[int]) -> None:
            """A worker died mid-recording: finish what it flushed now, as a node does at its next start
            (a file another process still writes is locked, and left alone)."""
            for recording_id in recording_ids:
                store.in_progress.discard(recording_id)
            await _recover_recordings(app[DATABASE], settings, app[RECORDING_KEY], run)

        pool = RelayWorkers(workers, WorkerConfig(
            ice_servers=[{"urls": server.urls} for server in stun], key=app[RECORDING_KEY],
            video_codec=settings.relay_video_codec, segment_seconds=settings.recording_segment_seconds,
            log_level=settings.log_level, log_format=settings.log_format), store, recover) if workers else None
        if pool is not None and warm_relays:
            pool.warm()

        def start_relay(hub: RoomHub, room_id: str, epoch: int) -> None:
            old = app[RELAYS].get(room_id)
            if old is not None and not old.task.done():
                if old.epoch >= epoch:
                    return  # already running (the log was replayed)
                old.outbox.put_control(CloseRequest(CloseCode.GOING_AWAY, "relay replaced"))
            session = pool.start(hub, room_id, epoch) if pool is not None else RelaySession.on_node(
                hub, room_id, epoch, store=store, ice_servers=stun, key=app[RECORDING_KEY],
                video_codec=settings.relay_video_codec, segment_seconds=settings.recording_segment_seconds)
            app[RELAYS][room_id] = session

            def forget(_: asyncio.Task[None]) -> None:
                if app[RELAYS].get(room_id) is session:
                    del app[RELAYS][room_id]
            session.task.add_done_callback(forget)

        lost = asyncio.Event()  # set when this node declares another lost: finish its recordings now
        hub = RoomHub(room_log, node_id=run, node_name=name,
                      max_participants=settings.room_max_participants, grace_seconds=settings.reconnect_grace,
                      presence_ttl=settings.presence_ttl, chat_store=chat_store(app[DATABASE]),
                      relay_starter=start_relay, media_only=media_only, relay_limit=settings.relay_limit,
                      relay_count=lambda: len(app[RELAYS]), on_node_lost=lambda node: lost.set())
        await hub.start()
        # A lost node's recordings are finished here (by one surviving node) rather than at its next start.
        orphans = asyncio.create_task(recovery.watch_lost(
            app[DATABASE], settings.recordings_dir, app[RECORDING_KEY], node=run, gone=hub.node_gone, wake=lost,
            every=settings.presence_ttl))
        app[HUB] = hub
        watch_hub(metrics, hub)
        watch_relays(metrics, app[RELAYS])
        if settings.redis_url:
            watch_redis(metrics, hub)
        app[ROOMS] = HubRooms(hub)
        sweep = asyncio.create_task(account_sweep.run(app[DATABASE], hub.here, app[ROOMS],
                                                      settings.account_sweep_seconds))
        try:
            yield
        finally:
            for task in (orphans, sweep):
                await cancel_and_wait(task)
            relays = [relay.task for relay in app[RELAYS].values()]
            for relay in app[RELAYS].values():
                relay.outbox.put_control(CloseRequest(CloseCode.GOING_AWAY, "server shutting down"))
            if relays:
                await asyncio.wait(relays, timeout=RELAY_STOP_SECONDS)
            if pool is not None:
                await pool.close()
            await hub.stop()
            await room_log.close()

    async def reminders_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(reminders.run(app[DATABASE], timedelta(minutes=settings.reminder_minutes_before)))
        yield
        await cancel_and_wait(task)

    async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
        task = None
        if settings.retention_interval:
            periods = purge.periods_of(settings.retention_recordings_days, settings.retention_records_days)
            task = asyncio.create_task(retention_schedule.loop(
                app[DATABASE], settings.recordings_dir, periods, retention_schedule.holder_name(settings.node_id),
                interval=settings.retention_interval))
        yield
        if task is not None:
            await cancel_and_wait(task)

    async def close_login(app: web.Application) -> None:
        await app[LOGIN_THROTTLE].close()
        app[PASSWORDS].close()

    async def close_sockets(app: web.Application) -> None:
        # A graceful stop hands over: relays move now, and every socket is closed with 1001 (going away),
        # which tells browsers to reconnect, to another node if there is one, and resume their seats there.
        # (Without closing them, shutdown would wait for every open WebSocket.)
        await app[HUB].drain(settings.drain_seconds)

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(signaling_ctx)
    if not media_only:  # the other nodes remind and purge
        app.cleanup_ctx.append(reminders_ctx)
        app.cleanup_ctx.append(retention_ctx)
    app.on_shutdown.append(close_sockets)
    app.on_cleanup.append(close_login)
    app.on_response_prepare.append(_security_headers)
    app.on_response_prepare.append(request_id_header)
    for module in MEDIA_NODE_ROUTES if media_only else ROUTE_MODULES:
        app.add_routes(module.routes)
    if not media_only:
        app.router.add_static("/static", STATIC_DIR, append_version=True)
    return app


def _cores() -> int:
    """The cores this process may run on: one relay worker each, by default."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class HubRooms:
    """The domain's ``RoomNotifier``, carried out by this node's hub (the room log carries it to the rest)."""

    def __init__(self, hub: RoomHub) -> None:
        self.hub = hub

    async def tell(self, consultation_id: int, event: RoomEvent) -> None:
        await self.hub.tell(room_id_for(consultation_id), event)


async def _publish_consent_texts(database: Database) -> None:
    """Publish new consent texts. An edited published text stops the start (SettingsError); a database that
    is down does not (/readyz says so, and the texts are published at the next start)."""
    texts = consent_templates.read_texts()
    try:
        await consent_templates.publish(database, texts)
    except (OSError, SQLAlchemyError):
        log.exception("could not publish the consent texts; will try at the next start")


STORAGE_SETTLE_SECONDS = 5.0  # how often a node that started without its database asks it again


async def _settle_storage(database: Database, settings: Settings, key: bytes) -> asyncio.Task[None] | None:
    """Prepare the recordings directory (its marker only for a new deployment: ``storage.settle``). A database
    that is down now must not stop the node starting, nor let it guess: it is asked again in the background
    until it answers (the task returned, to cancel at shutdown)."""
    try:
        await storage.settle(database, settings.recordings_dir, key)
        return None
    except (OSError, SQLAlchemyError):
        log.warning("the database does not answer: the recordings directory is prepared once it does")

    async def again() -> None:
        while True:
            await asyncio.sleep(STORAGE_SETTLE_SECONDS)
            try:
                await storage.settle(database, settings.recordings_dir, key)
                return
            except (OSError, SQLAlchemyError):
                continue
    return asyncio.create_task(again())


async def _recover_recordings(database: Database, settings: Settings, key: bytes, run: str) -> None:
    """Keep what a crash cut off (as this run, ``run``). A database that is down now must not stop the node
    starting (/readyz says so); the recordings are recovered at the next start, or by another node's sweep."""
    try:
        if recovered := await recovery.recover_interrupted(database, settings.recordings_dir, key, node=run):
            log.warning("kept %d recording(s) that the last shutdown cut off", recovered)
    except (OSError, SQLAlchemyError):
        log.exception("could not look for interrupted recordings; will try at the next start")


async def _close_probe(probe: storage.Probe) -> None:
    probe.close()


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")  # pages and API answers hold health data
