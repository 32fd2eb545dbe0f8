"""The region a landline caller's number belongs to, as the visit's GeoIP region says it (ISO 3166-2).

A landline's area code says where it is (``phonenumbers``' geocoder names the place); a mobile
number says nothing of where its owner is. A caller from a Moscow landline more likely is the
visitor whose IP is in Moscow than the one in Vladivostok: a weak signal, used to break ties.
"""
from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType, geocoder

# The geocoder's English place names for Russian area codes -> ISO 3166-2 codes (GeoLite2's); a
# place not listed here is compared by name with the visit's city instead.
_RU = {
    "moscow": ("RU-MOW", "RU-MOS"), "moscow province": ("RU-MOS", "RU-MOW"),
    "st petersburg": ("RU-SPE", "RU-LEN"), "leningrad region": ("RU-LEN", "RU-SPE"),
    "novosibirsk": ("RU-NVS",), "ekaterinburg": ("RU-SVE",), "sverdlovsk region": ("RU-SVE",),
    "nizhni novgorod": ("RU-NIZ",), "nizhny novgorod": ("RU-NIZ",), "republic of tatarstan": ("RU-TA",),
    "kazan": ("RU-TA",), "samara": ("RU-SAM",), "rostov-on-don": ("RU-ROS",), "rostov": ("RU-ROS",),
    "chelyabinsk": ("RU-CHE",), "omsk": ("RU-OMS",), "ufa": ("RU-BA",), "republic of bashkortostan": ("RU-BA",),
    "krasnoyarsk": ("RU-KYA",), "perm": ("RU-PER",), "voronezh": ("RU-VOR",), "volgograd": ("RU-VGG",),
    "krasnodar": ("RU-KDA",), "krasnodar territory": ("RU-KDA",), "vladivostok": ("RU-PRI",),
    "primorie territory": ("RU-PRI",), "primorsky territory": ("RU-PRI",), "khabarovsk": ("RU-KHA",),
    "irkutsk": ("RU-IRK",), "tyumen": ("RU-TYU",), "kaliningrad": ("RU-KGD",), "saratov": ("RU-SAR",),
}
LANDLINE = (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


@lru_cache(maxsize=65536)
def landline_place(caller: str) -> str | None:
    """The geocoder's English name of a landline caller's place (lower case); None for a mobile
    number, an unknown place, or anything that is not a number."""
    try:
        parsed = phonenumbers.parse(caller, None)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.number_type(parsed) not in LANDLINE:
        return None
    place = geocoder.description_for_number(parsed, "en").strip().lower()
    country = geocoder.country_name_for_number(parsed, "en").strip().lower()
    return place if place and place != country else None


def regions_of(place: str) -> frozenset[str]:
    """ISO 3166-2 codes a geocoder place stands for (empty when the table does not know it)."""
    return frozenset(_RU.get(place, ()))


def same_place(place: str | None, region: str | None, city: str | None) -> bool | None:
    """Whether a landline's place is the visit's region (or city); None when either is unknown."""
    if not place or not (region or city):
        return None
    codes = regions_of(place)
    if codes and region:
        return region in codes
    if city:
        return city.strip().lower() == place
    return None
