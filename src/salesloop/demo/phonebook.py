"""Real Chinese mobile number prefixes by province, read from the `phone` package's phone.dat.

`salesloop.crm.phones` derives a number's province from its 7-digit prefix with the same file, so a
demo number drawn here from a province's prefixes really says that province when the product
parses it.

phone.dat layout (see phone/phone.py): a header `<4si` (version, offset of the index), a text area
of NUL-terminated `province|city|zip|area_code` records, then an index of `<iiB` entries
(7-digit prefix, offset of its record, carrier type) sorted by prefix. We read the index in one
`struct.iter_unpack` pass instead of half a million binary-search look-ups.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

# Heads of ordinary consumer mobile numbers. IoT (140-149), data-only and some virtual-operator
# ranges are in phone.dat too, but `phonenumbers` rejects some of them as mobile numbers, and a
# contact person would not have one. Every prefix with these heads is a valid mobile number
# according to `phonenumbers` (checked across the whole table when this list was made).
MOBILE_HEADS: frozenset[str] = frozenset(
    [str(h) for h in range(130, 140)]
    + ["150", "151", "152", "153", "155", "156", "157", "158", "159"]
    + [str(h) for h in range(180, 190)]
    + ["166", "173", "175", "176", "177", "178", "198", "199"]
)


@dataclass(frozen=True)
class ProvincePrefixes:
    """The mobile prefixes of one province and, in step with them, the city of each prefix."""

    prefixes: list[int]
    city_index: list[int]  # index into `cities`, one per prefix
    cities: list[str]


def _phone_dat_path() -> Path:
    import phone

    return Path(phone.__file__).with_name("phone.dat")


@functools.lru_cache(maxsize=1)
def prefixes_by_province() -> dict[str, ProvincePrefixes]:
    """Province name (as in phone.dat and accounts.geography: 广东, 内蒙古 …) → its prefixes."""
    buf = _phone_dat_path().read_bytes()
    _version, index_offset = struct.unpack_from("<4si", buf, 0)
    entry_size = struct.calcsize("<iiB")
    count = (len(buf) - index_offset) // entry_size
    index = buf[index_offset : index_offset + count * entry_size]

    location_by_offset: dict[int, tuple[str, str]] = {}
    building: dict[str, tuple[list[int], list[int], dict[str, int]]] = {}
    for prefix, record_offset, _carrier in struct.iter_unpack("<iiB", index):
        if str(prefix)[:3] not in MOBILE_HEADS:
            continue
        location = location_by_offset.get(record_offset)
        if location is None:
            end = buf.index(b"\x00", record_offset)
            province, city, *_ = buf[record_offset:end].decode().split("|")
            location = location_by_offset[record_offset] = (province, city)
        province, city = location
        if not province or not city:
            continue
        prefixes, city_index, city_ids = building.setdefault(province, ([], [], {}))
        prefixes.append(prefix)
        city_index.append(city_ids.setdefault(city, len(city_ids)))
    return {
        province: ProvincePrefixes(prefixes=prefixes, city_index=city_index, cities=list(city_ids))
        for province, (prefixes, city_index, city_ids) in building.items()
    }
