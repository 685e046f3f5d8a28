"""REST: the administrator's console. Accounts (find, create, edit, disable, enable, reset a password, enter and
verify a clinician's licence),
hospitals and their departments, specialties, and partnerships with their members; administrators only."""

from __future__ import annotations

from aiohttp import web

from ..admin import accounts, hospitals, overview, partnerships, specialties, supervisors
from ..admin.inputs import (
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
)
from ..appkeys import DATABASE, ROOMS
from ..http import json_response, parse_body, parse_form, path_id
from ..identity.auth import caller
from ..openapi import accepts, answers, queries

routes = web.RouteTableDef()


@routes.get("/api/admin/overview")
@answers(overview.Overview)
async def admin_overview(request: web.Request) -> web.Response:
    """How many accounts (active, disabled, active administrators), hospitals, departments, specialties and
    partnerships there are."""
    async with request.app[DATABASE].session() as session:
        return json_response(await overview.counts(session, caller(request).principal))


# ---- accounts ----

@routes.get("/api/admin/accounts")
@queries(AccountQuery)
@answers(accounts.AccountPage)
async def list_accounts(request: web.Request) -> web.Response:
    """Accounts by username, 25 to a page: ``q`` (part of a username or name), ``hospital_id``, ``role``,
    ``status`` (active, disabled or any), ``page``; 422 naming a parameter that is wrong."""
    query = parse_form(request.query, AccountQuery)
    async with request.app[DATABASE].session() as session:
        page = await accounts.search(session, caller(request).principal, query)
    return json_response(accounts.page_shown(page))


@routes.post("/api/admin/accounts")
@answers(accounts.AccountCreated, status=201)
@accepts(NewAccount)
async def create_account(request: web.Request) -> web.Response:
    """A new account. Without a ``password`` one is generated and returned in ``password``, this once."""
    body = await parse_body(request, NewAccount)
    async with request.app[DATABASE].session() as session:
        account, generated = await accounts.create(session, caller(request).principal, body)
    return json_response(accounts.AccountCreated(**dict(account.shown()), password=generated), status=201)


@routes.get("/api/admin/accounts/{user_id}")
@answers(accounts.AccountShown)
async def get_account(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        account = await accounts.get(session, caller(request).principal, path_id(request, "user_id"))
    return json_response(account.shown())


@routes.put("/api/admin/accounts/{user_id}")
@answers(accounts.AccountShown)
@accepts(AccountUpdate)
async def update_account(request: web.Request) -> web.Response:
    """Set an account's name, role, hospital, department and specialty. 409 ``last-administrator`` for
    demoting the last active administrator."""
    body = await parse_body(request, AccountUpdate)
    async with request.app[DATABASE].session() as session:
        account = await accounts.update(session, caller(request).principal, path_id(request, "user_id"), body,
                                        rooms=request.app[ROOMS])
    return json_response(account.shown())


@routes.post("/api/admin/accounts/{user_id}/disable")
@answers(accounts.AccountShown)
async def disable_account(request: web.Request) -> web.Response:
    """The account can no longer log in, its sessions end at once, and it is sent away from any consultation's
    room it is in. 409 ``last-administrator`` for the last active administrator."""
    async with request.app[DATABASE].session() as session:
        account = await accounts.disable(session, caller(request).principal, path_id(request, "user_id"),
                                         rooms=request.app[ROOMS])
    return json_response(account.shown())


@routes.post("/api/admin/accounts/{user_id}/enable")
@answers(accounts.AccountShown)
async def enable_account(request: web.Request) -> web.Response:
    """The account may log in again; the sessions that disabling it ended stay ended."""
    async with request.app[DATABASE].session() as session:
        account = await accounts.enable(session, caller(request).principal, path_id(request, "user_id"))
    return json_response(account.shown())


@routes.post("/api/admin/accounts/{user_id}/password")
@answers(accounts.GeneratedPassword)
@accepts(PasswordReset)
async def reset_password(request: web.Request) -> web.Response:
    """A new password for the account, which ends its sessions, and sends it away from any consultation's room
    it is in (``session-ended``). Without a ``password`` one is generated and returned in ``password``, this
    once."""
    body = await parse_body(request, PasswordReset)
    async with request.app[DATABASE].session() as session:
        generated = await accounts.reset_password(session, caller(request).principal, path_id(request, "user_id"),
                                                  body, rooms=request.app[ROOMS])
    return json_response(accounts.GeneratedPassword(password=generated))


@routes.put("/api/admin/accounts/{user_id}/licence")
@answers(accounts.AccountShown)
@accepts(LicenceInput)
async def set_licence(request: web.Request) -> web.Response:
    """A clinician's practising licence number (15 digits, or "" for none) and professional title. Changing
    either clears the licence's verification. 422 naming the field for a malformed number, or for an account
    that is not a clinician's."""
    body = await parse_body(request, LicenceInput)
    async with request.app[DATABASE].session() as session:
        account = await accounts.set_licence(session, caller(request).principal, path_id(request, "user_id"), body,
                                             rooms=request.app[ROOMS])
    return json_response(account.shown())


@routes.post("/api/admin/accounts/{user_id}/licence/verify")
@answers(accounts.AccountShown)
@accepts(LicenceInput)
async def verify_licence(request: web.Request) -> web.Response:
    """Record that the caller checked the clinician's licence number and title, sent as they read them; the
    account's ``licence`` then names who and when (so does the audit trail). 409 if the account holds another
    number or title now; 422 ``licence_number`` while it has none."""
    body = await parse_body(request, LicenceInput)
    async with request.app[DATABASE].session() as session:
        account = await accounts.verify_licence(session, caller(request).principal, path_id(request, "user_id"),
                                                body, rooms=request.app[ROOMS])
    return json_response(account.shown())


# ---- hospitals, departments, specialties ----

@routes.get("/api/admin/hospitals")
@answers(hospitals.HospitalList)
async def list_hospitals(request: web.Request) -> web.Response:
    """Every hospital with its departments and how many accounts work there."""
    async with request.app[DATABASE].session() as session:
        found = await hospitals.list_all(session, caller(request).principal)
    return json_response(hospitals.HospitalList(hospitals=[view.shown() for view in found]))


@routes.post("/api/admin/hospitals")
@answers(hospitals.HospitalShown, status=201, description="The hospital, created.")
@accepts(HospitalInput)
async def create_hospital(request: web.Request) -> web.Response:
    """A hospital: name, level, region and IANA time zone (422 for a zone the server does not know)."""
    body = await parse_body(request, HospitalInput)
    async with request.app[DATABASE].session() as session:
        hospital = await hospitals.create(session, caller(request).principal, body)
    return json_response(hospitals.hospital_shown(hospital), status=201)


@routes.get("/api/admin/hospitals/{hospital_id}")
@answers(hospitals.HospitalDetail)
async def get_hospital(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        view = await hospitals.get(session, caller(request).principal, path_id(request, "hospital_id"))
    return json_response(view.shown())


@routes.put("/api/admin/hospitals/{hospital_id}")
@answers(hospitals.HospitalShown)
@accepts(HospitalInput)
async def update_hospital(request: web.Request) -> web.Response:
    body = await parse_body(request, HospitalInput)
    async with request.app[DATABASE].session() as session:
        hospital = await hospitals.update(session, caller(request).principal, path_id(request, "hospital_id"), body)
    return json_response(hospitals.hospital_shown(hospital))


@routes.post("/api/admin/hospitals/{hospital_id}/departments")
@answers(hospitals.DepartmentShown, status=201, description="The department, added.")
@accepts(DepartmentInput)
async def add_department(request: web.Request) -> web.Response:
    body = await parse_body(request, DepartmentInput)
    async with request.app[DATABASE].session() as session:
        department = await hospitals.add_department(session, caller(request).principal,
                                                    path_id(request, "hospital_id"), body)
    return json_response(hospitals.department_shown(department), status=201)


@routes.put("/api/admin/departments/{department_id}")
@answers(hospitals.DepartmentShown)
@accepts(DepartmentInput)
async def update_department(request: web.Request) -> web.Response:
    body = await parse_body(request, DepartmentInput)
    async with request.app[DATABASE].session() as session:
        department = await hospitals.update_department(session, caller(request).principal,
                                                       path_id(request, "department_id"), body)
    return json_response(hospitals.department_shown(department))


@routes.get("/api/admin/specialties")
@answers(specialties.SpecialtyList)
async def list_specialties(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        found = await specialties.list_all(session, caller(request).principal)
    return json_response(specialties.SpecialtyList(specialties=[specialties.shown(s) for s in found]))


@routes.post("/api/admin/specialties")
@answers(specialties.SpecialtyRecord, status=201, description="The specialty, created.")
@accepts(SpecialtyInput)
async def create_specialty(request: web.Request) -> web.Response:
    body = await parse_body(request, SpecialtyInput)
    async with request.app[DATABASE].session() as session:
        specialty = await specialties.create(session, caller(request).principal, body)
    return json_response(specialties.shown(specialty), status=201)


@routes.put("/api/admin/specialties/{specialty_id}")
@answers(specialties.SpecialtyRecord)
@accepts(SpecialtyInput)
async def update_specialty(request: web.Request) -> web.Response:
    body = await parse_body(request, SpecialtyInput)
    async with request.app[DATABASE].session() as session:
        specialty = await specialties.update(session, caller(request).principal, path_id(request, "specialty_id"),
                                             body)
    return json_response(specialties.shown(specialty))


# ---- partnerships ----

@routes.get("/api/admin/partnerships")
@answers(partnerships.PartnershipList)
async def list_partnerships(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        found = await partnerships.list_all(session, caller(request).principal)
    return json_response(partnerships.PartnershipList(partnerships=[view.shown() for view in found]))


@routes.post("/api/admin/partnerships")
@answers(partnerships.PartnershipShown, status=201, description="The partnership, created.")
@accepts(NewPartnership)
async def create_partnership(request: web.Request) -> web.Response:
    """A partnership: its lead hospital and member hospitals (the lead is always a member)."""
    body = await parse_body(request, NewPartnership)
    async with request.app[DATABASE].session() as session:
        view = await partnerships.create(session, caller(request).principal, body)
    return json_response(view.shown(), status=201)


@routes.get("/api/admin/partnerships/{partnership_id}")
@answers(partnerships.PartnershipShown)
async def get_partnership(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        view = await partnerships.get(session, caller(request).principal, path_id(request, "partnership_id"))
    return json_response(view.shown())


@routes.put("/api/admin/partnerships/{partnership_id}")
@answers(partnerships.PartnershipShown)
@accepts(PartnershipUpdate)
async def update_partnership(request: web.Request) -> web.Response:
    """Rename a partnership or give it another lead."""
    body = await parse_body(request, PartnershipUpdate)
    async with request.app[DATABASE].session() as session:
        view = await partnerships.update(session, caller(request).principal, path_id(request, "partnership_id"),
                                         body)
    return json_response(view.shown())


@routes.post("/api/admin/partnerships/{partnership_id}/members")
@answers(partnerships.PartnershipShown)
@accepts(MemberInput)
async def add_partnership_member(request: web.Request) -> web.Response:
    body = await parse_body(request, MemberInput)
    async with request.app[DATABASE].session() as session:
        view = await partnerships.add_member(session, caller(request).principal,
                                             path_id(request, "partnership_id"), body)
    return json_response(view.shown())


@routes.delete("/api/admin/partnerships/{partnership_id}/members/{hospital_id}")
@answers(partnerships.PartnershipShown)
async def remove_partnership_member(request: web.Request) -> web.Response:
    """The hospital leaves the partnership; 409 for its lead."""
    async with request.app[DATABASE].session() as session:
        view = await partnerships.remove_member(session, caller(request).principal,
                                                path_id(request, "partnership_id"), path_id(request, "hospital_id"))
    return json_response(view.shown())


async def _supervisors_json(request: web.Request, partnership_id: int) -> web.Response:
    async with request.app[DATABASE].session() as session:
        linked, _ = await supervisors.of_partnership(session, caller(request).principal, partnership_id)
    return json_response(supervisors.listed(linked))


@routes.get("/api/admin/partnerships/{partnership_id}/supervisors")
@answers(supervisors.SupervisorList)
async def list_partnership_supervisors(request: web.Request) -> web.Response:
    """The supervisor accounts overseeing the partnership (they read its statistics)."""
    return await _supervisors_json(request, path_id(request, "partnership_id"))


@routes.post("/api/admin/partnerships/{partnership_id}/supervisors")
@answers(supervisors.SupervisorList)
@accepts(SupervisorInput)
async def add_partnership_supervisor(request: web.Request) -> web.Response:
    """A supervisor account comes to oversee the partnership; 422 for an account of another role. Audited."""
    body = await parse_body(request, SupervisorInput)
    partnership_id = path_id(request, "partnership_id")
    async with request.app[DATABASE].session() as session:
        await supervisors.link(session, caller(request).principal, partnership_id, body)
    return await _supervisors_json(request, partnership_id)


@routes.delete("/api/admin/partnerships/{partnership_id}/supervisors/{user_id}")
@answers(supervisors.SupervisorList)
async def remove_partnership_supervisor(request: web.Request) -> web.Response:
    """The supervisor no longer oversees the partnership; 404 if they did not. Audited."""
    partnership_id = path_id(request, "partnership_id")
    async with request.app[DATABASE].session() as session:
        await supervisors.unlink(session, caller(request).principal, partnership_id, path_id(request, "user_id"))
    return await _supervisors_json(request, partnership_id)
