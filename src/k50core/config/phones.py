"""Phone numbers: parse, validate and normalise to E.164 with phonenumbers."""
from __future__ import annotations

import phonenumbers

_FORMATS = {
    "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    "national": phonenumbers.PhoneNumberFormat.NATIONAL,
    "e164": phonenumbers.PhoneNumberFormat.E164,
}
DISPLAY_FORMATS = tuple(_FORMATS) + ("ru",)


def normalise(text: object, region: str = "RU") -> str | None:
    """E.164 form of a valid phone number, else None."""
    if not isinstance(text, (str, int)) or isinstance(text, bool):
        return None
    try:
        number = phonenumbers.parse(str(text), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display(e164: str, style: str = "ru") -> str:
    """A number formatted for the page: "ru" gives ``+7 (495) 000-00-01``."""
    number = phonenumbers.parse(e164, None)
    if style == "ru":
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        if number.country_code == 7 and national.startswith("8 "):
            return "+7 " + national[2:]
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, _FORMATS[style])
