"""A deterministic demo dataset: fictional people, companies and issuing departments with valid ids.

Every resident ID and credit code here is generated with the check-digit functions of this package from a
fixed seed; the names are invented. ``load_demo`` issues a set of licences of many types (one expired, one
revoked, one suspended); ``make_demo_rows`` produces any number of import rows for tests and benchmarks.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from licence.checkdigits import (
    CREDIT_CODE_ALPHABET,
    credit_code_check_char,
    organisation_code_check_char,
    resident_id_check_char,
)
from licence.library import LicenceLibrary
from licence.types import get_type

__all__ = [
    "DEMO_TODAY",
    "DemoPerson",
    "DemoOrganisation",
    "make_resident_id",
    "make_credit_code",
    "demo_persons",
    "demo_organisations",
    "demo_issuers",
    "load_demo",
    "make_demo_rows",
]

DEMO_TODAY = dt.date(2025, 6, 1)
_SEED = 20250601
_REGIONS = ("350102", "350103", "350104", "350105", "350111", "110105", "310104", "440305")
_ADDRESS = {
    "350102": "福建省福州市鼓楼区",
    "350103": "福建省福州市台江区",
    "350104": "福建省福州市仓山区",
    "350105": "福建省福州市马尾区",
    "350111": "福建省福州市晋安区",
    "110105": "北京市朝阳区",
    "310104": "上海市徐汇区",
    "440305": "广东省深圳市南山区",
}
_STREETS = ("榕荫路", "白马路", "杨桥路", "五一北路", "湖东路", "工业路", "福飞路", "金山大道", "江滨中大道")
_ORG_BODY_ALPHABET = CREDIT_CODE_ALPHABET  # inside both the GB 11714 and the GB 32100 alphabets

_PERSON_NAMES = (
    ("林晓梅", "女", "汉"),
    ("陈志强", "男", "汉"),
    ("黄雅琴", "女", "汉"),
    ("郑建国", "男", "汉"),
    ("王思远", "男", "汉"),
    ("李若兰", "女", "畲"),
    ("张明辉", "男", "汉"),
    ("刘海燕", "女", "汉"),
    ("吴子涵", "男", "回"),
    ("周文博", "男", "汉"),
    ("许静怡", "女", "汉"),
    ("蔡永福", "男", "汉"),
)
_ORG_NAMES = (
    ("榕城味道餐饮管理有限公司", "有限责任公司（自然人投资或控股）", "餐饮服务；餐饮管理"),
    ("闽江源示例食品店", "个体工商户", "食品销售；餐饮服务"),
    ("三坊七巷示例茶楼有限公司", "有限责任公司（自然人独资）", "茶饮服务；预包装食品销售"),
    ("鼓山示例酒店有限公司", "有限责任公司", "住宿服务；餐饮服务；会议服务"),
    ("东街口示例美容美发店", "个体工商户", "美容服务；理发服务"),
    ("海峡示例人力资源服务有限公司", "有限责任公司", "职业中介活动；劳务派遣服务"),
    ("福州市鼓楼区示例社区养老服务中心", "民办非企业单位", "居家养老服务；日间照料"),
    ("温泉示例门诊部有限公司", "有限责任公司", "门诊服务"),
    ("闽都示例置业有限公司", "有限责任公司（法人独资）", "房地产开发经营"),
    ("福建示例建设工程有限公司", "有限责任公司", "房屋建筑工程施工总承包"),
    ("西湖示例游泳馆有限公司", "有限责任公司", "游泳场所服务；体育用品零售"),
    ("乌山示例书店有限公司", "有限责任公司", "图书零售；文具零售"),
)
_ISSUER_NAMES = {
    "police": "福州市公安局鼓楼分局",
    "market": "福州市鼓楼区市场监督管理局",
    "planning": "福州市自然资源和规划局",
    "housing": "福州市鼓楼区住房和城乡建设局",
    "health": "福州市鼓楼区卫生健康局",
    "hr": "福州市鼓楼区人力资源和社会保障局",
    "civil": "福州市鼓楼区民政局",
}
_ISSUER_FOR_TYPE = {
    "resident_id": "police",
    "business_licence": "market",
    "food_business_licence": "market",
    "planning_permit": "planning",
    "construction_permit": "housing",
    "hygiene_licence": "health",
    "hr_service_licence": "hr",
    "private_nonenterprise_cert": "civil",
    "special_trade_licence": "police",
    "medical_institution_licence": "health",
}


@dataclass(frozen=True)
class DemoPerson:
    name: str
    gender: str
    ethnicity: str
    birth_date: dt.date
    address: str
    resident_id: str


@dataclass(frozen=True)
class DemoOrganisation:
    name: str
    credit_code: str
    company_type: str
    business_scope: str
    legal_representative: str
    address: str
    established_on: dt.date


def make_resident_id(rng: random.Random, region: str | None = None, gender: str | None = None) -> str:
    """A random resident ID with a real region code, a birth date 1950-2005 and a correct check digit."""
    region = region or rng.choice(_REGIONS)
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(55 * 365))
    sequence = rng.randrange(1000)
    if gender is not None and (sequence % 2 == 1) != (gender == "男"):
        sequence = (sequence + 1) % 1000
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + resident_id_check_char(body)


def make_credit_code(rng: random.Random, prefix: str = "91", region: str | None = None) -> str:
    """A random unified social credit code whose GB 11714 and GB 32100 check characters are right."""
    region = region or rng.choice(_REGIONS)
    body = "".join(rng.choice(_ORG_BODY_ALPHABET) for _ in range(8))
    first17 = f"{prefix}{region}{body}{organisation_code_check_char(body)}"
    return first17 + credit_code_check_char(first17)


def _address(rng: random.Random, region: str) -> str:
    return f"{_ADDRESS[region]}{rng.choice(_STREETS)}{rng.randrange(1, 300)}号"


def demo_persons() -> list[DemoPerson]:
    rng = random.Random(_SEED)
    people = []
    for name, gender, ethnicity in _PERSON_NAMES:
        region = rng.choice(_REGIONS[:5])
        rid = make_resident_id(rng, region, gender)
        birth = dt.date(int(rid[6:10]), int(rid[10:12]), int(rid[12:14]))
        people.append(DemoPerson(name, gender, ethnicity, birth, _address(rng, region), rid))
    return people


def demo_organisations() -> list[DemoOrganisation]:
    rng = random.Random(_SEED + 1)
    reps = [p.name for p in demo_persons()]
    orgs = []
    for i, (name, kind, scope) in enumerate(_ORG_NAMES):
        prefix = "52" if kind == "民办非企业单位" else "92" if kind == "个体工商户" else "91"
        established = dt.date(2008, 1, 1) + dt.timedelta(days=rng.randrange(15 * 365))
        code = make_credit_code(rng, prefix, "350102")
        orgs.append(DemoOrganisation(name, code, kind, scope, reps[i], _address(rng, "350102"), established))
    return orgs


def demo_issuers() -> dict[str, tuple[str, str]]:
    """Issuing departments: key -> (credit code, name)."""
    rng = random.Random(_SEED + 2)
    return {key: (make_credit_code(rng, "11", "350102"), name) for key, name in _ISSUER_NAMES.items()}


def _org_face(type_code: str, org: DemoOrganisation, extra: dict[str, Any]) -> dict[str, Any]:
    common = {
        "name": org.name,
        "operator_name": org.name,
        "credit_code": org.credit_code,
        "legal_representative": org.legal_representative,
        "address": org.address,
        "premises": org.address,
        "company_type": org.company_type,
        "established_on": org.established_on.isoformat(),
        "business_scope": org.business_scope,
    }
    names = set(get_type(type_code).field_names)
    face = {k: v for k, v in common.items() if k in names}
    face.update(extra)
    return face


def load_demo(conn: Connection) -> int:
    """Issue the demo licences in the caller's transaction (ids and times are fixed); returns the count."""
    rng = random.Random(_SEED + 3)
    clock_at = dt.datetime(2025, 6, 1, 1, 0, tzinfo=dt.UTC)
    library = LicenceLibrary(
        conn, clock=lambda: clock_at, id_factory=lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))
    )
    issuers = demo_issuers()
    count = 0

    def issue(type_code: str, holder_id: str, holder_name: str, face: dict[str, Any], issued: dt.date) -> str:
        nonlocal count
        code, name = issuers[_ISSUER_FOR_TYPE[type_code]]
        record = library.issue(type_code, holder_id, holder_name, face, code, name, issued, actor="demo")
        count += 1
        return record.id

    for p in demo_persons():
        face = {
            "name": p.name,
            "gender": p.gender,
            "ethnicity": p.ethnicity,
            "birth_date": p.birth_date.isoformat(),
            "address": p.address,
            "id_number": p.resident_id,
        }
        issue(
            "resident_id",
            p.resident_id,
            p.name,
            face,
            dt.date(2016, 1, 1) + dt.timedelta(rng.randrange(3000)),
        )
    orgs = demo_organisations()
    for org in orgs:
        face = _org_face(
            "business_licence", org, {"registered_capital": rng.choice([10, 50, 100, 500, 1000])}
        )
        issue("business_licence", org.credit_code, org.name, face, org.established_on)

    food = {"main_business": "餐饮服务经营者", "business_items": "热食类食品制售；冷食类食品制售"}
    issue(
        "food_business_licence",
        orgs[0].credit_code,
        orgs[0].name,
        _org_face("food_business_licence", orgs[0], food),
        dt.date(2023, 3, 1),
    )
    expired_id = issue(
        "food_business_licence",
        orgs[1].credit_code,
        orgs[1].name,
        _org_face(
            "food_business_licence",
            orgs[1],
            {"main_business": "食品销售经营者", "business_items": "预包装食品销售"},
        ),
        dt.date(2018, 3, 1),
    )
    issue(
        "food_business_licence",
        orgs[2].credit_code,
        orgs[2].name,
        _org_face("food_business_licence", orgs[2], food),
        dt.date(2024, 5, 20),
    )
    hygiene = {"business_items": "住宿；游泳场所"}
    revoked_id = issue(
        "hygiene_licence",
        orgs[10].credit_code,
        orgs[10].name,
        _org_face("hygiene_licence", orgs[10], hygiene),
        dt.date(2022, 7, 1),
    )
    issue(
        "hygiene_licence",
        orgs[4].credit_code,
        orgs[4].name,
        _org_face("hygiene_licence", orgs[4], {"business_items": "美容店；理发店"}),
        dt.date(2024, 1, 15),
    )
    issue(
        "hr_service_licence",
        orgs[5].credit_code,
        orgs[5].name,
        _org_face("hr_service_licence", orgs[5], {"service_scope": "职业介绍；人力资源供求信息收集和发布"}),
        dt.date(2023, 9, 1),
    )
    issue(
        "private_nonenterprise_cert",
        orgs[6].credit_code,
        orgs[6].name,
        _org_face("private_nonenterprise_cert", orgs[6], {}),
        dt.date(2021, 4, 12),
    )
    suspended_id = issue(
        "special_trade_licence",
        orgs[3].credit_code,
        orgs[3].name,
        _org_face("special_trade_licence", orgs[3], {"trade": "旅馆业"}),
        dt.date(2020, 11, 3),
    )
    issue(
        "medical_institution_licence",
        orgs[7].credit_code,
        orgs[7].name,
        _org_face("medical_institution_licence", orgs[7], {"subjects": "内科；外科；口腔科"}),
        dt.date(2022, 2, 18),
    )
    project = {
        "project_name": "闽都示例花园一期",
        "builder": orgs[8].name,
        "project_address": "福州市鼓楼区示例地块",
        "construction_scale": "总建筑面积 52000 平方米",
    }
    issue("planning_permit", orgs[8].credit_code, orgs[8].name, project, dt.date(2024, 8, 8))
    construction = {
        **{k: project[k] for k in ("project_name", "builder", "project_address", "construction_scale")},
        "contract_price": 18650.5,
        "contractor": orgs[9].name,
    }
    issue("construction_permit", orgs[8].credit_code, orgs[8].name, construction, dt.date(2024, 11, 11))

    library.revoke(revoked_id, "经查存在严重卫生违法行为，依法吊销", "区卫生健康局执法大队")
    library.suspend(suspended_id, "治安检查发现未落实住宿登记制度，责令停业整顿", "鼓楼分局治安大队")
    library.expire_due(DEMO_TODAY, actor="demo")
    assert library.get(expired_id).status == "expired"
    return count


def make_demo_rows(n: int, seed: int = _SEED) -> list[dict[str, Any]]:
    """``n`` valid import rows (paper-era licences of all types) with nested ``face`` dicts; deterministic."""
    rng = random.Random(seed)
    issuers = demo_issuers()
    type_codes = list(_ISSUER_FOR_TYPE)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        type_code = type_codes[i % len(type_codes)]
        licence_type = get_type(type_code)
        issuer_code, issuer_name = issuers[_ISSUER_FOR_TYPE[type_code]]
        issued = dt.date(2005, 1, 1) + dt.timedelta(days=rng.randrange(19 * 365))
        valid_until = licence_type.default_valid_until(issued)
        region = rng.choice(_REGIONS)
        if licence_type.holder_kind == "person":
            gender = rng.choice("男女")
            holder_id = make_resident_id(rng, region, gender)
            holder_name = f"示例{i:06d}"
            birth = f"{holder_id[6:10]}-{holder_id[10:12]}-{holder_id[12:14]}"
            face: dict[str, Any] = {
                "name": holder_name,
                "gender": gender,
                "ethnicity": "汉",
                "birth_date": birth,
                "address": _address(rng, region),
                "id_number": holder_id,
            }
        else:
            holder_id = make_credit_code(rng, "91", region)
            holder_name = f"示例企业{i:06d}有限公司"
            org = DemoOrganisation(
                holder_name,
                holder_id,
                "有限责任公司",
                "示例经营范围",
                f"示例{i:06d}",
                _address(rng, region),
                issued,
            )
            extra: dict[str, Any] = {
                "registered_capital": rng.randrange(10, 5000),
                "main_business": "餐饮服务经营者",
                "business_items": "热食类食品制售",
                "service_scope": "职业介绍",
                "trade": "旅馆业",
                "subjects": "内科",
                "project_name": f"示例项目{i:06d}",
                "builder": holder_name,
                "project_address": _address(rng, region),
                "construction_scale": f"总建筑面积 {rng.randrange(1000, 90000)} 平方米",
                "contract_price": rng.randrange(100, 90000),
                "contractor": "福建示例建设工程有限公司",
            }
            names = set(licence_type.field_names)
            face = _org_face(type_code, org, {k: v for k, v in extra.items() if k in names})
        rows.append(
            {
                "licence_number": f"ZL{licence_type.type_id}{seed % 100000:05d}{i:09d}",
                "type_code": type_code,
                "holder_id": holder_id,
                "holder_name": holder_name,
                "issuer_credit_code": issuer_code,
                "issuer_name": issuer_name,
                "issue_date": issued.isoformat(),
                "valid_from": issued.isoformat(),
                "valid_until": valid_until.isoformat() if valid_until else "",
                "status": "valid",
                "source_case": "",
                "face": face,
            }
        )
    return rows
