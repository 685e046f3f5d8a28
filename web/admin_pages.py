"""The administrator's console: an overview, accounts (search, a page each, role, disable and enable, reset a
password, a clinician's licence entered and verified), hospitals with their departments, specialties, and
partnerships with their members.

Plain forms posted back here, then redirected (post/redirect/get) with ``?done=`` naming what happened; a
form that fails is shown again with what was typed and why. Each form is parsed into the model of
``server/admin/inputs.py`` and handed to the service in ``server/admin/`` that the REST API calls, which
decides who may act. A generated password is the one thing not redirected: it is shown in the answer to the
post that made it, once, and kept nowhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from server.admin import accounts, hospitals, overview, partnerships, specialties, supervisors
from server.admin.inputs import (
    AccountQuery,
    AccountUpdate,
    DepartmentInput,
    HospitalInput,
    LicenceInput,
    MemberInput,
    NewAccount,
    NewPartnership,
    PartnershipUpdate,
    PasswordReset,
    SpecialtyInput,
    SupervisorInput,
    time_zones,
)
from server.appkeys import DATABASE, ROOMS, SETTINGS
from server.errors import N_, TelemedError, ValidationFailed
from server.http import parse_form, path_id, read_form, translator
from server.identity.auth import caller
from server.models import HospitalLevel, Role
from server.parsing import parse_id
from server.permissions import CLINICAL_ROLES

from .forms import TITLE_LABELS, field_lines, summary
from .pages import safe_next
from .render import RENDERER

routes = web.RouteTableDef()

ROLE_LABELS = {
    Role.COUNTY_DOCTOR: N_("County doctor"), Role.SPECIALIST: N_("Specialist"), Role.COORDINATOR: N_("Coordinator"),
    Role.ADMIN: N_("Administrator"), Role.AUDITOR: N_("Auditor"), Role.SUPERVISOR: N_("Supervisor"),
}
LEVEL_LABELS = {
    HospitalLevel.COUNTY: N_("County hospital"), HospitalLevel.SECONDARY: N_("Secondary hospital"),
    HospitalLevel.TERTIARY: N_("Tertiary hospital"),
}
STATUS_LABELS = {"any": N_("Any status"), "active": N_("Active"), "disabled": N_("Disabled")}
DONE = {
    "account-created": N_("The account was created."), "account-updated": N_("The account was saved."),
    "disabled": N_("The account was disabled; its sessions have ended."),
    "enabled": N_("The account was enabled; it can log in with its password."),
    "password": N_("The password was changed; the account's sessions have ended."),
    "licence-saved": N_("The licence was saved. Verify it once you have checked it."),
    "licence-verified": N_("The licence was verified."),
    "hospital-created": N_("The hospital was created."), "hospital-updated": N_("The hospital was saved."),
    "department-added": N_("The department was added."), "department-updated": N_("The department was saved."),
    "specialty-created": N_("The specialty was created."), "specialty-updated": N_("The specialty was saved."),
    "partnership-created": N_("The partnership was created."),
    "partnership-updated": N_("The partnership was saved."),
    "member-added": N_("The hospital joined the partnership."),
    "member-removed": N_("The hospital left the partnership."),
    "supervisor-added": N_("The supervisor now oversees the partnership."),
    "supervisor-removed": N_("The supervisor no longer oversees the partnership."),
}


class FormError:
    """Why a form was refused, in the reader's words: the message, and each field with its label (the shared
    table of ``forms.FIELD_LABELS``), never its code name."""

    def __init__(self, request: web.Request, error: TelemedError) -> None:
        gettext = translator(request)
        fields = error.details.get("fields") or {}
        self.status = error.status
        self.fields = set(fields)
        self.message = summary(error, gettext)
        self.details = field_lines(error, gettext)


def _render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    done = DONE.get(request.query.get("done", "")) if request.method == "GET" else None
    return request.app[RENDERER].render(request, template, {
        "role_labels": ROLE_LABELS, "level_labels": LEVEL_LABELS, "status_labels": STATUS_LABELS,
        "roles": list(Role), "levels": list(HospitalLevel), "done": done, "title_labels": TITLE_LABELS,
        "clinical_roles": {r.value for r in CLINICAL_ROLES}, "failure": None, "form": {},
        "generated_password": None, **context}, status=status)


def _see(path: str, done: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?done={done}")


async def _form(request: web.Request) -> dict[str, str]:
    return {name: value.strip() for name, value in (await read_form(request)).items()}


async def _zone(session: AsyncSession, request: web.Request) -> ZoneInfo:
    who = caller(request).principal
    return ZoneInfo(await overview.home_zone(session, who, request.app[SETTINGS].default_timezone))


def shown_at(moment: datetime, zone: ZoneInfo) -> str:
    """A moment on the administrator's clock, with the zone's short name: an account list spans hospitals."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _chosen_password(form: Mapping[str, str]) -> str:
    """The password typed, when "set one" was chosen ("" has one generated, as an absent one does in the API)."""
    if form.get("password_mode") != "set":
        return ""
    if not form.get("password"):
        raise ValidationFailed({"password": N_("Type the password, or choose to generate one.")})
    return form["password"]


# ---- overview ----

@routes.get("/admin", name="admin")
async def admin_home(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        counts = await overview.counts(session, caller(request).principal)
    return _render(request, "admin_overview.html", {"counts": counts, "section": "overview"})


# ---- accounts ----

async def _choices(session: AsyncSession, request: web.Request) -> dict[str, Any]:
    """What the account forms offer: hospitals with their departments, and specialties."""
    who = caller(request).principal
    return {"hospitals": await hospitals.list_all(session, who),
            "specialties": await specialties.list_all(session, who)}


@routes.get("/admin/users", name="admin_users")
async def user_list(request: web.Request) -> web.Response:
    who = caller(request).principal
    failure = None
    try:
        query = parse_form(request.query, AccountQuery)
    except TelemedError as exc:
        failure, query = FormError(request, exc), AccountQuery()
    async with request.app[DATABASE].session() as session:
        page = await accounts.search(session, who, query)
        zone = await _zone(session, request)
        choices = await _choices(session, request)
    filters = {k: v for k, v in query.model_dump(mode="json", exclude={"page"}).items() if v not in (None, "", "any")}

    def page_link(number: int) -> str:
        return "/admin/users?" + urlencode({**filters, "page": number})

    return _render(request, "admin_users.html", {
        **choices, "section": "users", "page": page, "query": query, "failure": failure,
        "created": {a.id: shown_at(a.user.created_at, zone) for a in page.items}, "filtered": bool(filters),
        "page_link": page_link,
        "back": request.path_qs}, status=failure.status if failure else 200)


async def _new_account_page(request: web.Request, form: Mapping[str, str], failure: FormError | None = None,
                            ) -> web.Response:
    async with request.app[DATABASE].session() as session:
        choices = await _choices(session, request)
    return _render(request, "admin_user_new.html", {**choices, "section": "users", "form": form, "failure": failure},
                   status=failure.status if failure else 200)


@routes.get("/admin/users/new", name="admin_user_new")
async def user_new(request: web.Request) -> web.Response:
    return await _new_account_page(request, {"hospital_id": str(request.query.get("hospital_id", ""))})


@routes.post("/admin/users/new")
async def user_create(request: web.Request) -> web.Response:
    form = await _form(request)
    try:
        body = parse_form({**form, "password": _chosen_password(form)}, NewAccount)  # as POST /api/admin/accounts
        async with request.app[DATABASE].session() as session:
            account, generated = await accounts.create(session, caller(request).principal, body)
    except TelemedError as exc:
        return await _new_account_page(request, {**form, "password": ""}, FormError(request, exc))
    if generated is None:
        raise _see(f"/admin/users/{account.id}", "account-created")
    return await _account_page(request, account.id, generated=generated, done=DONE["account-created"], status=201)


async def _account_page(request: web.Request, user_id: int, *, form: Mapping[str, str] | None = None,
                        failure: FormError | None = None, generated: str | None = None, done: str | None = None,
                        status: int = 200, licence_form: Mapping[str, str] | None = None) -> web.Response:
    async with request.app[DATABASE].session() as session:
        account = await accounts.get(session, caller(request).principal, user_id)
        choices = await _choices(session, request)
        zone = await _zone(session, request)
    shown = {"display_name": account.user.display_name, "role": account.user.role.value,
             "hospital_id": str(account.user.hospital_id), "department_id": str(account.user.department_id or ""),
             "specialty_id": str(account.user.specialty_id or "")}
    context = {**choices, "section": "users", "account": account, "form": form or shown, "failure": failure,
               "created": shown_at(account.user.created_at, zone), "generated_password": generated,
               "is_self": account.id == caller(request).user.id,
               "licence_form": licence_form or {"licence_number": account.user.licence_number,
                                                "professional_title": account.user.professional_title.value},
               "licence_verified_at": shown_at(account.user.licence_verified_at, zone)
               if account.user.licence_verified_at else None}
    if done:  # the answer to a post, which is not redirected: say what it did here
        context["done"] = done
    return _render(request, "admin_user.html", context, status=status)


@routes.get("/admin/users/{user_id}", name="admin_user")
async def user_page(request: web.Request) -> web.Response:
    return await _account_page(request, path_id(request, "user_id"))


@routes.post("/admin/users/{user_id}")
async def user_update(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    form = await _form(request)
    try:
        body = parse_form(form, AccountUpdate)
        async with request.app[DATABASE].session() as session:
            await accounts.update(session, caller(request).principal, user_id, body, rooms=request.app[ROOMS])
    except TelemedError as exc:
        return await _account_page(request, user_id, form=form, failure=FormError(request, exc), status=exc.status)
    if user_id == caller(request).user.id and body.role is not Role.ADMIN:
        raise web.HTTPSeeOther("/")  # they gave up the console: its pages would now answer 403
    raise _see(f"/admin/users/{user_id}", "account-updated")


async def _switch(request: web.Request, operation: Callable[..., Any], done: str) -> web.Response:
    """Disable or enable, from the account's page or from a row of the list (back to where it was sent)."""
    user_id = path_id(request, "user_id")
    form = await _form(request)
    back = safe_next(form.get("back") or f"/admin/users/{user_id}")
    try:
        async with request.app[DATABASE].session() as session:
            await operation(session, caller(request).principal, user_id)
    except TelemedError as exc:
        return await _account_page(request, user_id, failure=FormError(request, exc), status=exc.status)
    path, _, query = back.partition("?")
    kept = "&".join(part for part in query.split("&") if part and not part.startswith("done="))
    raise web.HTTPSeeOther(f"{path}?{kept + '&' if kept else ''}done={done}")


@routes.post("/admin/users/{user_id}/disable")
async def user_disable(request: web.Request) -> web.Response:
    return await _switch(request, functools.partial(accounts.disable, rooms=request.app[ROOMS]), "disabled")


@routes.post("/admin/users/{user_id}/enable")
async def user_enable(request: web.Request) -> web.Response:
    return await _switch(request, accounts.enable, "enabled")


@routes.post("/admin/users/{user_id}/password")
async def user_password(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    form = await _form(request)
    try:
        body = parse_form({"password": _chosen_password(form)}, PasswordReset)  # as the API's
        async with request.app[DATABASE].session() as session:
            generated = await accounts.reset_password(session, caller(request).principal, user_id, body,
                                                      rooms=request.app[ROOMS])
    except TelemedError as exc:
        return await _account_page(request, user_id, failure=FormError(request, exc), status=exc.status)
    if generated is None:
        raise _see(f"/admin/users/{user_id}", "password")
    return await _account_page(request, user_id, generated=generated, done=DONE["password"])


@routes.post("/admin/users/{user_id}/licence")
async def user_licence(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    form = await _form(request)
    try:
        body = parse_form(form, LicenceInput)  # as PUT /api/admin/accounts/{id}/licence
        async with request.app[DATABASE].session() as session:
            await accounts.set_licence(session, caller(request).principal, user_id, body, rooms=request.app[ROOMS])
    except TelemedError as exc:
        return await _account_page(request, user_id, licence_form=form, failure=FormError(request, exc),
                                   status=exc.status)
    raise _see(f"/admin/users/{user_id}", "licence-saved")


@routes.post("/admin/users/{user_id}/licence/verify")
async def user_licence_verify(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    form = await read_form(request)
    try:
        seen = parse_form({k: form.get(k, "") for k in ("licence_number", "professional_title")}, LicenceInput)
        async with request.app[DATABASE].session() as session:
            await accounts.verify_licence(session, caller(request).principal, user_id, seen,
                                          rooms=request.app[ROOMS])
    except TelemedError as exc:
        return await _account_page(request, user_id, failure=FormError(request, exc), status=exc.status)
    raise _see(f"/admin/users/{user_id}", "licence-verified")


# ---- hospitals and departments ----

@routes.get("/admin/hospitals", name="admin_hospitals")
async def hospital_list(request: web.Request, *, form: Mapping[str, str] | None = None,
                        failure: FormError | None = None) -> web.Response:
    async with request.app[DATABASE].session() as session:
        found = await hospitals.list_all(session, caller(request).principal)
    return _render(request, "admin_hospitals.html", {
        "section": "hospitals", "hospitals": found, "form": form or {"timezone": "Asia/Shanghai"},
        "failure": failure, "zones": sorted(time_zones())}, status=failure.status if failure else 200)


@routes.post("/admin/hospitals")
async def hospital_create(request: web.Request) -> web.Response:
    form = await _form(request)
    try:
        body = parse_form(form, HospitalInput)
        async with request.app[DATABASE].session() as session:
            hospital = await hospitals.create(session, caller(request).principal, body)
    except TelemedError as exc:
        return await hospital_list(request, form=form, failure=FormError(request, exc))
    raise _see(f"/admin/hospitals/{hospital.id}", "hospital-created")


async def _hospital_page(request: web.Request, hospital_id: int, *, form: Mapping[str, str] | None = None,
                         failure: FormError | None = None, failed_form: str = "") -> web.Response:
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        view = await hospitals.get(session, who, hospital_id)
        found = await specialties.list_all(session, who)
    shown = {"name": view.hospital.name, "level": view.hospital.level.value, "region": view.hospital.region,
             "timezone": view.hospital.timezone}
    return _render(request, "admin_hospital.html", {
        "section": "hospitals", "view": view, "specialties": found, "zones": sorted(time_zones()),
        "form": form if failed_form == "hospital" and form else shown,
        "department_form": form if failed_form.startswith("department") and form else {},
        "failed_form": failed_form, "failure": failure}, status=failure.status if failure else 200)


@routes.get("/admin/hospitals/{hospital_id}", name="admin_hospital")
async def hospital_page(request: web.Request) -> web.Response:
    return await _hospital_page(request, path_id(request, "hospital_id"))


@routes.post("/admin/hospitals/{hospital_id}")
async def hospital_update(request: web.Request) -> web.Response:
    hospital_id = path_id(request, "hospital_id")
    form = await _form(request)
    try:
        body = parse_form(form, HospitalInput)
        async with request.app[DATABASE].session() as session:
            await hospitals.update(session, caller(request).principal, hospital_id, body)
    except TelemedError as exc:
        return await _hospital_page(request, hospital_id, form=form, failure=FormError(request, exc),
                                    failed_form="hospital")
    raise _see(f"/admin/hospitals/{hospital_id}", "hospital-updated")


@routes.post("/admin/hospitals/{hospital_id}/departments")
async def department_add(request: web.Request) -> web.Response:
    hospital_id = path_id(request, "hospital_id")
    form = await _form(request)
    try:
        body = parse_form(form, DepartmentInput)
        async with request.app[DATABASE].session() as session:
            await hospitals.add_department(session, caller(request).principal, hospital_id, body)
    except TelemedError as exc:
        return await _hospital_page(request, hospital_id, form=form, failure=FormError(request, exc),
                                    failed_form="department-new")
    raise _see(f"/admin/hospitals/{hospital_id}", "department-added")


@routes.post("/admin/departments/{department_id}")
async def department_update(request: web.Request) -> web.Response:
    department_id = path_id(request, "department_id")
    form = await _form(request)
    try:
        body = parse_form(form, DepartmentInput)
        async with request.app[DATABASE].session() as session:
            department = await hospitals.update_department(session, caller(request).principal, department_id, body)
    except TelemedError as exc:
        hospital_id = parse_id(form.get("hospital_id"))  # the page the form was on, to show it again
        if hospital_id is None or exc.status not in (409, 422):
            raise
        return await _hospital_page(request, hospital_id, form=form, failure=FormError(request, exc),
                                    failed_form=f"department-{department_id}")
    raise _see(f"/admin/hospitals/{department.hospital_id}", "department-updated")


# ---- specialties ----

@routes.get("/admin/specialties", name="admin_specialties")
async def specialty_list(request: web.Request, *, form: Mapping[str, str] | None = None,
                         failure: FormError | None = None, failed_form: str = "") -> web.Response:
    async with request.app[DATABASE].session() as session:
        found = await specialties.list_all(session, caller(request).principal)
    return _render(request, "admin_specialties.html", {
        "section": "specialties", "specialties": found, "form": form or {"slot_minutes": "30"},
        "failed_form": failed_form, "failure": failure}, status=failure.status if failure else 200)


@routes.post("/admin/specialties")
async def specialty_create(request: web.Request) -> web.Response:
    form = await _form(request)
    try:
        body = parse_form(form, SpecialtyInput)
        async with request.app[DATABASE].session() as session:
            await specialties.create(session, caller(request).principal, body)
    except TelemedError as exc:
        return await specialty_list(request, form=form, failure=FormError(request, exc), failed_form="new")
    raise _see("/admin/specialties", "specialty-created")


@routes.post("/admin/specialties/{specialty_id}")
async def specialty_update(request: web.Request) -> web.Response:
    specialty_id = path_id(request, "specialty_id")
    form = await _form(request)
    try:
        body = parse_form(form, SpecialtyInput)
        async with request.app[DATABASE].session() as session:
            await specialties.update(session, caller(request).principal, specialty_id, body)
    except TelemedError as exc:
        return await specialty_list(request, form=form, failure=FormError(request, exc),
                                    failed_form=str(specialty_id))
    raise _see("/admin/specialties", "specialty-updated")


# ---- partnerships ----

@routes.get("/admin/partnerships", name="admin_partnerships")
async def partnership_list(request: web.Request, *, form: Mapping[str, Any] | None = None,
                           failure: FormError | None = None) -> web.Response:
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        found = await partnerships.list_all(session, who)
        all_hospitals = await hospitals.list_all(session, who)
    return _render(request, "admin_partnerships.html", {
        "section": "partnerships", "partnerships": found, "hospitals": all_hospitals, "form": form or {},
        "failure": failure}, status=failure.status if failure else 200)


@routes.post("/admin/partnerships")
async def partnership_create(request: web.Request) -> web.Response:
    form: dict[str, Any] = await _form(request)
    # checkboxes share a name: read them all (read_form keeps one value per name)
    form["member_ids"] = [str(v) for v in (await request.post()).getall("member_ids", [])]
    try:
        body = parse_form(form, NewPartnership)
        async with request.app[DATABASE].session() as session:
            view = await partnerships.create(session, caller(request).principal, body)
    except TelemedError as exc:
        return await partnership_list(request, form=form, failure=FormError(request, exc))
    raise _see(f"/admin/partnerships/{view.partnership.id}", "partnership-created")


async def _partnership_page(request: web.Request, partnership_id: int, *, form: Mapping[str, str] | None = None,
                            failure: FormError | None = None) -> web.Response:
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        view = await partnerships.get(session, who, partnership_id)
        all_hospitals = await hospitals.list_all(session, who)
        overseeing, candidates = await supervisors.of_partnership(session, who, partnership_id)
    inside = {view.lead.id, *(h.id for h in view.members)}
    shown = {"name": view.partnership.name, "lead_hospital_id": str(view.lead.id)}
    return _render(request, "admin_partnership.html", {
        "section": "partnerships", "view": view, "hospitals": all_hospitals, "form": form or shown,
        "outside": [h.hospital for h in all_hospitals if h.hospital.id not in inside], "failure": failure,
        "supervisors": overseeing, "candidates": candidates},
        status=failure.status if failure else 200)


@routes.get("/admin/partnerships/{partnership_id}", name="admin_partnership")
async def partnership_page(request: web.Request) -> web.Response:
    return await _partnership_page(request, path_id(request, "partnership_id"))


@routes.post("/admin/partnerships/{partnership_id}")
async def partnership_update(request: web.Request) -> web.Response:
    partnership_id = path_id(request, "partnership_id")
    form = await _form(request)
    try:
        body = parse_form(form, PartnershipUpdate)
        async with request.app[DATABASE].session() as session:
            await partnerships.update(session, caller(request).principal, partnership_id, body)
    except TelemedError as exc:
        return await _partnership_page(request, partnership_id, form=form, failure=FormError(request, exc))
    raise _see(f"/admin/partnerships/{partnership_id}", "partnership-updated")


@routes.post("/admin/partnerships/{partnership_id}/members")
async def member_add(request: web.Request) -> web.Response:
    partnership_id = path_id(request, "partnership_id")
    form = await _form(request)
    try:
        body = parse_form(form, MemberInput)
        async with request.app[DATABASE].session() as session:
            await partnerships.add_member(session, caller(request).principal, partnership_id, body)
    except TelemedError as exc:
        return await _partnership_page(request, partnership_id, failure=FormError(request, exc))
    raise _see(f"/admin/partnerships/{partnership_id}", "member-added")


@routes.post("/admin/partnerships/{partnership_id}/members/{hospital_id}/remove")
async def member_remove(request: web.Request) -> web.Response:
    partnership_id = path_id(request, "partnership_id")
    try:
        async with request.app[DATABASE].session() as session:
            await partnerships.remove_member(session, caller(request).principal, partnership_id,
                                             path_id(request, "hospital_id"))
    except TelemedError as exc:
        return await _partnership_page(request, partnership_id, failure=FormError(request, exc))
    raise _see(f"/admin/partnerships/{partnership_id}", "member-removed")


@routes.post("/admin/partnerships/{partnership_id}/supervisors")
async def supervisor_add(request: web.Request) -> web.Response:
    partnership_id = path_id(request, "partnership_id")
    form = await _form(request)
    try:
        body = parse_form(form, SupervisorInput)
        async with request.app[DATABASE].session() as session:
            await supervisors.link(session, caller(request).principal, partnership_id, body)
    except TelemedError as exc:
        return await _partnership_page(request, partnership_id, failure=FormError(request, exc))
    raise _see(f"/admin/partnerships/{partnership_id}", "supervisor-added")


@routes.post("/admin/partnerships/{partnership_id}/supervisors/{user_id}/remove")
async def supervisor_remove(request: web.Request) -> web.Response:
    partnership_id = path_id(request, "partnership_id")
    try:
        async with request.app[DATABASE].session() as session:
            await supervisors.unlink(session, caller(request).principal, partnership_id, path_id(request, "user_id"))
    except TelemedError as exc:
        return await _partnership_page(request, partnership_id, failure=FormError(request, exc))
    raise _see(f"/admin/partnerships/{partnership_id}", "supervisor-removed")
