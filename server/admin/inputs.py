"""What an administrator sends: one model per operation, parsed from a JSON body by the API, from a form by the
pages and from arguments by the command line, so all three keep the same limits."""

from __future__ import annotations

from functools import cache
from typing import Literal
from zoneinfo import available_timezones

import pydantic

from ..errors import N_
from ..identity.passwords import MIN_PASSWORD_LENGTH
from ..models import HospitalLevel, ProfessionalTitle, Role
from ..parsing import Id

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$"  # as logins are typed: no spaces, no look-alike letters
SPECIALTY_CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"  # it appears in URLs (?specialty=cardiology)
MAX_MEMBERS = 500
LICENCE_DIGITS = 15


@cache
def time_zones() -> frozenset[str]:
    """The IANA zones this machine knows (read once: it walks the zone database)."""
    return frozenset(available_timezones())


# The models carry no docstrings: they would become the OpenAPI schemas' descriptions.
class _Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)


class AccountQuery(_Body):
    q: str = pydantic.Field(default="", max_length=100)  # part of a username or a name
    hospital_id: Id | None = None
    role: Role | None = None
    status: Literal["active", "disabled", "any"] = "any"
    page: int = pydantic.Field(default=1, ge=1, le=10_000)


class NewAccount(_Body):
    username: str = pydantic.Field(pattern=USERNAME_PATTERN)
    display_name: str = pydantic.Field(min_length=1, max_length=100)
    role: Role
    hospital_id: Id
    department_id: Id | None = None
    specialty_id: Id | None = None
    # None: the server generates a temporary one and shows it once
    password: str | None = pydantic.Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class AccountUpdate(_Body):
    display_name: str = pydantic.Field(min_length=1, max_length=100)
    role: Role
    hospital_id: Id
    department_id: Id | None = None
    specialty_id: Id | None = None


class LicenceInput(_Body):
    licence_number: str = pydantic.Field(default="", max_length=32)  # "" for none (yet)
    professional_title: ProfessionalTitle = ProfessionalTitle.NONE

    @pydantic.field_validator("licence_number")
    @classmethod
    def _licence_form(cls, value: str) -> str:
        # The 医师执业证书编码 on a physician's practising certificate (医师执业证书) is 15 digits, as the national
        # register of practising physicians shows it. Anything else is refused rather than stored as typed: the
        # usual mistakes are the 27-digit qualification certificate number (医师资格证书编码), which is another
        # document, and spaces or full-width digits copied from a scan (spaces between groups are dropped).
        number = value.replace(" ", "").replace("\u3000", "")
        if number and not (len(number) == LICENCE_DIGITS and number.isascii() and number.isdigit()):
            raise ValueError(N_("A practising licence number (执业证书编码) is 15 digits."))
        return number


class PasswordReset(_Body):
    # None: the server generates a temporary one and shows it once
    password: str | None = pydantic.Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class HospitalInput(_Body):
    name: str = pydantic.Field(min_length=1, max_length=200)
    level: HospitalLevel
    region: str = pydantic.Field(min_length=1, max_length=200)
    timezone: str = pydantic.Field(default="Asia/Shanghai", max_length=64)

    @pydantic.field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in time_zones():
            raise ValueError(N_("Not a time zone of the IANA database, such as Asia/Shanghai."))
        return value


class DepartmentInput(_Body):
    name: str = pydantic.Field(min_length=1, max_length=200)
    specialty_id: Id | None = None


class SpecialtyInput(_Body):
    code: str = pydantic.Field(pattern=SPECIALTY_CODE_PATTERN)
    name_zh: str = pydantic.Field(min_length=1, max_length=100)
    name_en: str = pydantic.Field(min_length=1, max_length=100)
    slot_minutes: int = pydantic.Field(default=30, ge=5, le=240, multiple_of=5)


class NewPartnership(_Body):
    name: str = pydantic.Field(min_length=1, max_length=200)
    lead_hospital_id: Id
    member_ids: list[Id] = pydantic.Field(default_factory=list, max_length=MAX_MEMBERS)


class PartnershipUpdate(_Body):
    name: str = pydantic.Field(min_length=1, max_length=200)
    lead_hospital_id: Id


class MemberInput(_Body):
    hospital_id: Id


class SupervisorInput(_Body):
    user_id: Id
