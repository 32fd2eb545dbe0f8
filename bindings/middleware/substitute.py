"""Finding the site's own phone numbers in HTML and swapping them for the assigned number.

Only numbers the config knows as the site's (``site.default_number`` and every pool's
``default_number``) are swapped, wherever they are written in the usual forms of any country —
``+7 (495) 123-45-67``, ``8 495 123 45 67``, ``84951234567``; ``(415) 555-0100``,
``+1 415 555 0100``; ``020 7946 0018``, ``+44 (0)20 7946 0018``; ``030/123456789``;
``8 017 123-45-67`` — in text and in ``tel:`` links. The replacement keeps the page's written
form: each digit of the national number is replaced in place, so separators, brackets and
the ``+7`` / ``8`` / ``0`` prefix stay as the page wrote them (a new national number of another
length: the last group takes the difference; another country: the new number's own format).

HTML is scanned with a small tokenizer that keeps every byte it does not swap: comments,
``<script>``, ``<style>``, ``<textarea>`` and any element carrying ``data-k50-noswap`` (with
everything inside it) are left alone. It is not a validating parser: malformed markup is
copied through unchanged where it cannot be read.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from k50core.config.phones import display as _display, normalise

__all__ = ["Substituter", "site_numbers"]

# what may stand between two digits of a written number (at most _MAX_SEP of them)
_SEP = r"(?:[ \t\u00a0\u2009\u202f()./\-\u2010-\u2015]|&nbsp;|&#160;|&#[xX]a0;)"
_MAX_SEP = 3
_RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "noscript", "template"}
_RAW_SKIPPED = {"script", "style", "textarea", "xmp", "noscript", "template"}  # title is text we do swap
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
         "wbr", "keygen", "command", "basefont", "frame", "isindex"}
# a tag up to its closing ">" outside quoted attribute values; a comment; a doctype / processing instruction
_TOKEN = re.compile(r"<!--.*?(?:-->|\Z)|<![^>]*>?|<\?[^>]*>?|</?[A-Za-z][^>\"']*(?:(?:\"[^\"]*\"|'[^']*')[^>\"']*)*>?",
                    re.S)
_TAG_NAME = re.compile(r"</?([A-Za-z][^\s/>]*)")
_ATTR = re.compile(r"([^\s\"'>/=]+)(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s\"'>]+)?|([^\s\"'>/=]+)")
_CHARS = re.compile(r"&#\d+;|&#[xX][0-9a-fA-F]+;|&\w+;|.", re.S)  # a character or a character reference
_NOSWAP = re.compile(r"[\s\"']data-k50-noswap(?=[\s=/>])", re.I)


def site_numbers(config: object) -> list[str]:
    """The site's own numbers in E.164: the site default and every pool's default, in config order."""
    out: list[str] = []
    for n in [getattr(config, "default_number", None)] + [getattr(p, "default_number", None)
                                                          for p in getattr(config, "pools", {}).values()]:
        if n and n not in out:
            out.append(n)
    return out


def _parts(e164: str) -> tuple[str, str, tuple[str, ...]]:
    """(country code, national significant number, national trunk prefixes) of a valid E.164 number."""
    num = phonenumbers.parse(e164, None)
    region = phonenumbers.region_code_for_number(num)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region) if region else None
    return str(num.country_code), phonenumbers.national_significant_number(num), _trunks(meta)


def _trunks(meta: object) -> tuple[str, ...]:
    """The national prefixes written before a national number, longest first: the region's own
    ("8" in Russia, "0" in the UK) and what its parsing rule admits when that is plain digits
    (Belarus writes ``8 017 …``: "0|80?" gives 0, 8 and 80)."""
    if meta is None:
        return ()
    found = {getattr(meta, "national_prefix", None) or ""}
    rule = getattr(meta, "national_prefix_for_parsing", None) or ""
    if re.fullmatch(r"[\d|?]+", rule):
        for alt in rule.split("|"):
            if re.fullmatch(r"\d+", alt):
                found.add(alt)
            elif re.fullmatch(r"\d+\?", alt):
                found.update((alt[:-2], alt[:-1]))
    return tuple(sorted((t for t in found if t), key=len, reverse=True))


def _number_pattern(e164: str) -> str:
    cc, nsn, trunks = _parts(e164)
    sep = f"{_SEP}{{0,{_MAX_SEP}}}"
    prefixes = [rf"\+ ?{re.escape(cc)}", re.escape(cc)] + [re.escape(t) for t in trunks]
    body = sep.join(re.escape(d) for d in nsn)
    return rf"(?:(?:{'|'.join(prefixes)}){sep})?{body}"


class Substituter:
    """Swaps the given site numbers (any written form parseable in ``region``) for an assigned one."""

    def __init__(self, numbers: Iterable[str], region: str = "RU", style: str = "ru") -> None:
        self.numbers: list[str] = []
        for n in numbers:
            e164 = normalise(n, region)
            if e164 is not None and e164 not in self.numbers:
                self.numbers.append(e164)
        self.style = style
        self._parts = [_parts(n)[:2] for n in sorted(self.numbers, key=lambda n: -len(n))]
        # the longest national numbers first, so one that ends another is not cut short
        alts = [_number_pattern(n) for n in sorted(self.numbers, key=lambda n: -len(n))]
        self.pattern = re.compile(rf"(?<![\d+\w])(?:{'|'.join(alts)})(?!\d)") if alts else None

    # -- plain text ---------------------------------------------------------------------------
    def text(self, text: str, number: str | None, *, tel: bool = False) -> str:
        """``text`` with every site number replaced by ``number`` (E.164) in the same written form."""
        if self.pattern is None or not number or not text:
            return text
        try:
            new_cc, new_nsn, _ = _parts(number)
        except phonenumbers.NumberParseException:
            return text

        def swap(m: re.Match[str]) -> str:
            return self._rewrite(m.group(0), number, new_cc, new_nsn, tel)
        return self.pattern.sub(swap, text)

    def _rewrite(self, written: str, number: str, new_cc: str, new_nsn: str, tel: bool) -> str:
        digits = [m.start() for m in _CHARS.finditer(written) if len(m.group(0)) == 1 and m.group(0) in "0123456789"]
        seen = "".join(written[i] for i in digits)
        old = next(((cc, nsn) for cc, nsn in self._parts if seen.endswith(nsn)), None)
        if old is None or old[0] != new_cc:
            # another country: the new number's own format, in the page's prefix style
            if tel:
                return number
            return _display(number, self.style) if written.startswith("+") else _display(number, "national")
        # digit for digit; a national number of another length: the last group takes the difference
        out = list(written)
        places = digits[len(digits) - len(old[1]):]
        for i, pos in enumerate(places):
            out[pos] = new_nsn[i:i + 1] if i < len(places) - 1 else new_nsn[i:]
        return "".join(out)

    # -- HTML -----------------------------------------------------------------------------------
    def html(self, html: str, number: str | None) -> str:
        """``html`` with site numbers swapped in text and ``tel:`` links, outside skipped elements."""
        if self.pattern is None or not number or not html:
            return html
        if not self.pattern.search(html):  # the common case for pages without the number: one scan
            return html
        out: list[str] = []
        stack: list[tuple[str, bool]] = []  # open elements: (name, skipped)
        skipped = 0                         # how many of them are skipped
        pos = 0
        n = len(html)
        while pos < n:
            m = _TOKEN.search(html, pos)
            end = m.start() if m else n
            if end > pos:
                chunk = html[pos:end]
                out.append(chunk if skipped else self.text(chunk, number))
            if m is None:
                break
            token = m.group(0)
            pos = m.end()
            if not token.startswith("<") or token.startswith(("<!", "<?")) or not token.endswith(">"):
                out.append(token)
                continue
            name = _TAG_NAME.match(token).group(1).lower()  # type: ignore[union-attr]
            if token.startswith("</"):
                out.append(token)
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i][0] == name:
                        skipped -= sum(1 for _, s in stack[i:] if s)
                        del stack[i:]
                        break
                continue
            noswap = bool(_NOSWAP.search(token)) or name in _RAW_SKIPPED
            out.append(token if noswap or skipped else self._tag(token, number))
            if name in _RAW_TEXT:
                # raw text runs to its own end tag: nothing in it is markup
                close = re.compile(rf"</{re.escape(name)}\s*>", re.I).search(html, pos)
                stop = close.start() if close else n
                body = html[pos:stop]
                out.append(body if (noswap or skipped) else self.text(body, number))
                pos = stop
                if close:
                    out.append(close.group(0))
                    pos = close.end()
                continue
            if name in _VOID or token.endswith("/>"):
                continue
            stack.append((name, noswap))
            skipped += noswap
        return "".join(out)

    def _tag(self, token: str, number: str) -> str:
        """A start tag with the number swapped in ``href="tel:…"`` values."""
        if "tel:" not in token.lower():
            return token

        def attr(m: re.Match[str]) -> str:
            if m.group(1) is None or m.group(1).lower() != "href" or not m.group(3):
                return m.group(0)
            value = m.group(3)
            q = value[0] if value[0] in "\"'" else ""
            inner = value[1:-1] if q else value
            if not inner.strip().lower().startswith("tel:"):
                return m.group(0)
            return f"{m.group(1)}{m.group(2)}{q}{self.text(inner, number, tel=True)}{q}"

        head = _TAG_NAME.match(token).end()  # type: ignore[union-attr]
        return token[:head] + _ATTR.sub(attr, token[head:])
