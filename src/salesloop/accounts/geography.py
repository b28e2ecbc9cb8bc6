"""China's province-level divisions (GB/T 2260 codes) and the demo organisation's regions."""

from __future__ import annotations

PROVINCES: list[tuple[str, str]] = [
    ("11", "北京"),
    ("12", "天津"),
    ("13", "河北"),
    ("14", "山西"),
    ("15", "内蒙古"),
    ("21", "辽宁"),
    ("22", "吉林"),
    ("23", "黑龙江"),
    ("31", "上海"),
    ("32", "江苏"),
    ("33", "浙江"),
    ("34", "安徽"),
    ("35", "福建"),
    ("36", "江西"),
    ("37", "山东"),
    ("41", "河南"),
    ("42", "湖北"),
    ("43", "湖南"),
    ("44", "广东"),
    ("45", "广西"),
    ("46", "海南"),
    ("50", "重庆"),
    ("51", "四川"),
    ("52", "贵州"),
    ("53", "云南"),
    ("54", "西藏"),
    ("61", "陕西"),
    ("62", "甘肃"),
    ("63", "青海"),
    ("64", "宁夏"),
    ("65", "新疆"),
    ("71", "台湾"),
    ("81", "香港"),
    ("82", "澳门"),
]

PROVINCE_NAME_BY_CODE = dict(PROVINCES)
PROVINCE_CODE_BY_NAME = {name: code for code, name in PROVINCES}

# The four regions of the demo organisation (SPEC: 华东, 华南, 华北, 东北), by province code.
DEMO_REGIONS: list[tuple[str, str, list[str]]] = [
    ("east", "华东", ["31", "32", "33", "34", "35", "36", "37"]),
    ("south", "华南", ["44", "45", "46"]),
    ("north", "华北", ["11", "12", "13", "14", "15"]),
    ("northeast", "东北", ["21", "22", "23"]),
]


def province_code(name: str) -> str | None:
    """The code of a province from its name, with or without the 省/市/自治区 suffix."""
    cleaned = name.strip()
    for suffix in ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市"):
        if cleaned.endswith(suffix) and cleaned[: -len(suffix)] in PROVINCE_CODE_BY_NAME:
            cleaned = cleaned[: -len(suffix)]
            break
    return PROVINCE_CODE_BY_NAME.get(cleaned)
