"""Telephony webhooks: payload parsers (generic JSON, Twilio status callbacks, Asterisk/FreePBX
CDR) into the engine's call dict, and request signatures (k50core's HMAC-SHA256 with a timestamp,
Twilio's X-Twilio-Signature). The HTTP service's ``POST /v1/calls`` uses both."""
from .payloads import (
           FORMATS,
           NotFinal,
           PayloadError,
           decode_body,
           decode_form,
           detect,
           from_asterisk,
           from_twilio,
           rename,
           to_call,
           zone,
)
from .signing import (
           SIGNATURE_HEADER,
           TIMESTAMP_HEADER,
           TWILIO_HEADER,
           SignatureError,
           Verifier,
           sign,
           signed_headers,
           twilio_signature,
           verify_twilio,
)

__all__ = ["FORMATS", "NotFinal", "PayloadError", "decode_body", "decode_form", "detect", "from_asterisk",
           "from_twilio", "rename", "to_call", "zone", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "TWILIO_HEADER",
           "SignatureError", "Verifier", "sign", "signed_headers", "twilio_signature", "verify_twilio"]
