"""Realistic demo households for one rural commune: Vietnamese names, villages, members, surveys.

Pure and deterministic: the same `index` always yields the same household (same national IDs,
same `external_ref`), so re-seeding is idempotent at the registry's import.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
          "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Ma", "Nông", "Hà", "Lò")
# Weights: Nguyễn is by far the most common family name; Ma, Nông, Hà, Lò are common among the
# Tày, Nùng and Thái communities of the northern uplands.
FAMILY_WEIGHTS = (38, 11, 9, 7, 5, 2, 4, 4, 3, 2, 2, 2, 2, 1, 1, 1, 3, 3, 3, 2)
MALE_MIDDLE = ("Văn", "Đức", "Minh", "Hữu", "Quang", "Công", "Xuân", "Đình", "Ngọc")
FEMALE_MIDDLE = ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Hồng", "Kim")
MALE_GIVEN = ("An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Khánh", "Long", "Nam", "Phong",
              "Quân", "Sơn", "Thắng", "Toàn", "Trung", "Tuấn", "Việt", "Vinh", "Lực", "Chiến")
FEMALE_GIVEN = ("Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Liên",
                "Linh", "Mai", "Nga", "Ngân", "Nhung", "Phương", "Thảo", "Trang", "Vân", "Yến")
ETHNICITIES = ("Kinh", "Tày", "Dao", "Nùng", "H'Mông")
ETHNICITY_WEIGHTS = (55, 25, 10, 6, 4)

# Indicators of the 2022–2026 standard (POLICY.md §1); each survey states all twelve.
INDICATORS_2022 = ("employment", "dependants", "nutrition", "health_insurance", "adult_education",
                   "school_attendance", "housing_quality", "housing_area", "water_source",
                   "latrine", "telecom", "information_access")
# How often each indicator is deprived among low-income households (rough field shares).
DEPRIVATION_RATE = {"employment": 0.35, "dependants": 0.25, "nutrition": 0.15,
                    "health_insurance": 0.3, "adult_education": 0.2, "school_attendance": 0.1,
                    "housing_quality": 0.3, "housing_area": 0.3, "water_source": 0.35,
                    "latrine": 0.4, "telecom": 0.1, "information_access": 0.08}


def _name(rng: random.Random, family: str, sex: str) -> str:
    middle = rng.choice(MALE_MIDDLE if sex == "male" else FEMALE_MIDDLE)
    given = rng.choice(MALE_GIVEN if sex == "male" else FEMALE_GIVEN)
    return f"{family} {middle} {given}"


def national_id(*, province_code: str, born: date, sex: str, serial: int) -> str:
    """A 12-digit citizen ID in the official layout: province (3), century+sex (1), year (2), serial (6)."""
    century = (0 if born.year < 2000 else 2) + (0 if sex == "male" else 1)
    return f"{int(province_code):03d}{century}{born.year % 100:02d}{serial % 1_000_000:06d}"


def _birth(rng: random.Random, *, age_from: int, age_to: int, today: date) -> date:
    return today - timedelta(days=rng.randint(age_from * 365 + 1, age_to * 365 - 1))


def household(index: int, *, province_code: str, commune_code: str, villages: list[str],
              survey_date: date, review_round: str) -> dict[str, Any]:
    """One import line: the household, its members and an inline survey."""
    rng = random.Random(f"{commune_code}-{index}")
    family = rng.choices(FAMILY, FAMILY_WEIGHTS)[0]
    ethnicity = rng.choices(ETHNICITIES, ETHNICITY_WEIGHTS)[0]
    head_sex = rng.choices(("male", "female"), (7, 3))[0]
    head_born = _birth(rng, age_from=24, age_to=75, today=survey_date)
    serial = int(commune_code) * 1000 + index  # unique per commune and household
    people = [("head", head_sex, head_born, family)]
    if rng.random() < 0.85:
        spouse_sex = "female" if head_sex == "male" else "male"
        spouse_born = head_born + timedelta(days=rng.randint(-2500, 2500))
        spouse_born = min(spouse_born, survey_date - timedelta(days=18 * 365))
        people.append(("spouse", spouse_sex, spouse_born, rng.choice(FAMILY)))
    head_age = (survey_date - head_born).days // 365
    for _ in range(rng.choices((0, 1, 2, 3, 4), (10, 20, 35, 25, 10))[0]):
        max_age = max(1, min(30, head_age - 18))
        born = survey_date - timedelta(days=rng.randint(30, max_age * 365))
        people.append(("child", rng.choice(("male", "female")), born, family))
    if rng.random() < 0.15:
        people.append(("parent", rng.choice(("male", "female")),
                       _birth(rng, age_from=70, age_to=90, today=survey_date), family))
    members = [{"full_name": _name(rng, fam, sex), "sex": sex, "relation": relation,
                "date_of_birth": born.isoformat(), "ethnicity": ethnicity,
                "national_id": national_id(province_code=province_code, born=born, sex=sex,
                                           serial=serial * 10 + i)}
               for i, (relation, sex, born, fam) in enumerate(people)]
    # Income per person per month: a skewed spread around the rural lines (1.5 M poor, 2.25 M middle).
    income = int(round(rng.lognormvariate(14.65, 0.45), -4))
    low = income <= 2_250_000
    deprivations = {code: rng.random() < (rate if low else rate / 4)
                    for code, rate in DEPRIVATION_RATE.items()}
    village = villages[index % len(villages)]
    return {
        "external_ref": f"DEMO-{commune_code}-{index:06d}",
        "area_type": "rural",
        "location": {"province_code": province_code, "commune_code": commune_code,
                     "village": village},
        "address": f"Số {rng.randint(1, 200)}, {village}",
        "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
        "members": members,
        "survey": {"survey_date": survey_date.isoformat(), "review_round": review_round,
                   "income_per_capita_vnd": income, "deprivations": deprivations,
                   "facts": {"housing_area_m2": rng.randint(18, 120)},
                   "surveyor": "Cán bộ LĐTBXH xã"},
    }


GOLDEN_HEAD = "Nông Văn Thắng"


def golden(*, province_code: str, commune_code: str, village: str, survey_date: date,
           review_round: str, index: int = 999_999) -> dict[str, Any]:
    """The golden-path household: rural, 1,200,000 VND, deprived in health insurance, housing area, latrine."""
    h = household(index, province_code=province_code, commune_code=commune_code,
                  villages=[village], survey_date=survey_date, review_round=review_round)
    h["members"][0]["full_name"] = GOLDEN_HEAD
    h["survey"]["income_per_capita_vnd"] = 1_200_000
    h["survey"]["deprivations"] = {c: c in ("health_insurance", "housing_area", "latrine")
                                   for c in INDICATORS_2022}
    return h
