'''Traffic source and traffic type of a visit.

:class:`SourceCatalogue` answers "where did this visitor come from" with a
pair ``(source, traffic_type)``: *source* is a short name such as ``yandex``,
``google``, ``vk``, ``telegram`` or a referring host such as ``partner.ru``
(``None`` when unknown), *traffic_type* is one of :data:`TRAFFIC_TYPES`.

Classification
--------------
``classify(landing_host, query, referrer_host)`` looks at, in this order:

a. **Paid traffic.** ``utm_medium`` is a paid medium (``cpc``, ``ppc``,
   ``cpm``, ``cpa``, ``cpv``, ``paid``, ``paidsearch``, ``paid_search``,
   ``paid-search``, ``paid-social``, ``paid_social``, ``paidsocial``,
   ``display``, ``banner``, ``retargeting``, ``remarketing``, ``ad``,
   ``ads``, ``context``; case-insensitive), or the landing URL carries a
   non-empty ad click id: ``yclid`` (yandex), ``gclid``, ``gbraid``,
   ``wbraid``, ``gclsrc``, ``dclid`` (google), ``msclkid`` (bing),
   ``ttclid`` (tiktok), ``twclid`` (twitter), ``li_fat_id`` (linkedin).
   A paid click id makes the visit ``ads`` whatever ``utm_medium`` says.
   Type ``ads``; source: ``utm_source`` if present, else the click id's
   source, else the referrer's source (as in c), else the source of an
   organic click id (as in d), else ``None``.
b. **Other UTM tags.** ``utm_medium`` names a channel: ``organic`` (search,
   or the catalogue type of ``utm_source`` when that is social, messenger or
   email: ``utm_source=vk&utm_medium=organic`` is social), ``search``,
   ``seo``, ``social``, ``smm``, ``email``, ``newsletter``, ``messenger``,
   ``referral``, ``affiliate``, ``partner`` and a few spellings of these (see
   ``_MEDIUMS``). A medium not in the table is read by its first word:
   ``cpc_yandex`` and ``cpm-banner`` are ads, ``email_march`` is email.
   Source: ``utm_source``, else the referrer's source (as in c), else the
   source of an organic click id (as in d), else ``None``.
   With ``utm_source`` but no (or an unknown) ``utm_medium``, the type is
   the catalogue type of the source the tag names (``utm_source=google`` ->
   search, ``utm_source=vk`` -> social, ``utm_source=t.me`` -> messenger)
   and ``referral`` for a source the catalogue does not know.
c. **Referrer.** The same site as the landing page (the same host, or both
   under the same registrable domain: ``shop.example.ru`` and
   ``www.example.ru``; ``a.example.co.uk`` and ``b.example.co.uk``) is
   ``(None, "internal")``. A host in the catalogue gives its source and type
   (``www.google.co.uk`` -> ``("google", "search")``). Any other host is
   ``referral``, with the host (without a leading ``www.``) as source.
d. **No referrer.** ``(None, "direct")``, except that an organic click id
   names the source: ``fbclid`` -> ``("facebook", "social")``,
   ``ysclid`` -> ``("yandex", "search")``, ``srsltid`` ->
   ``("google", "search")``. Facebook adds ``fbclid`` to every outbound
   link, paid or not, and Yandex and Google add ``ysclid``/``srsltid`` to
   organic results, so none of them means paid; they only stand in for a
   referrer that the browser did not send (in-app browsers often don't).

``utm_source`` is normalised: stripped, lowercased, then mapped through the
aliases of the catalogue (``ya``, ``yandex_direct``, ``yandexdirect`` ->
``yandex``; ``adwords``, ``google_ads`` -> ``google``; ``fb`` -> facebook;
``vkontakte``, ``vkads``, ``vk_ads`` -> ``vk``; ``tg`` -> telegram; ...).
A value that is a host in the catalogue becomes its source
(``yandex.ru`` -> ``yandex``, ``l.facebook.com`` -> ``facebook``); any other
value is kept (without a leading ``www.``). UTM keys are case-sensitive.

Hosts match the catalogue entry they equal or are a subdomain of, and the
most specific entry wins: ``mail.yandex.ru`` is ``("yandex", "email")``
while ``yandex.ru`` is search. ``google``, ``yandex``, ``yahoo`` and
``pinterest`` also match under any country domain: ``google.<cc>``,
``google.co.<cc>``, ``google.com.<cc>`` (``google.ru``, ``google.co.uk``,
``google.com.tr``). Referrers from ad servers (``yabs.yandex.ru``,
``googleadservices.com``, ...) are ``ads``; Google and Yandex account,
document and disk pages (``accounts.google.com``, ``passport.yandex.ru``,
...) are ``referral`` with source ``google``/``yandex``. Android app
referrers (``android-app://com.google.android.gm``) are matched on the
package name for a few well-known apps. :meth:`SourceCatalogue.lookup`
gives the catalogue entry of a single host.

Overrides
---------
The config ``sources:`` section is a mapping. Each key that does not start
with ``$`` is a source name (lowercase, no spaces)::

    sources:
      partner:                      # a new source: type is required
        type: referral
        hosts: [partner.ru, partner-shop.com]
        aliases: [partner_ru]       # utm_source values that mean it
      vk:                           # a built-in source
        type: ads                   # changes its type (see below)
        hosts: [vk.link]            # adds hosts
      $mediums:                     # utm_medium -> traffic type
        sms: messenger
        push: messenger
        context: null               # null removes a built-in medium
      $paid_mediums: [cpc_vk, promo] # shorthand for "<medium>: ads"
      $click_ids:                   # query parameter -> source
        vkclid: vk                  # a paid click id (type ads)
        mc_cid: {source: mailchimp, type: email}  # a non-paid marker
        fbclid: null                # null removes a built-in click id

* ``hosts`` are bare host names; each matches itself and its subdomains.
  A host listed here takes precedence over the built-in catalogue. No
  scheme, path, port or ``*.``; no bare top-level or public suffix
  (``ru``, ``co.uk``). ``xn--`` names are accepted and stored decoded.
* ``type`` of a built-in source changes the type of all its hosts that had
  the source's main type; hosts with a type of their own keep it
  (``yandex: {type: referral}`` leaves ``mail.yandex.ru`` email).
  New hosts get the source's type.
* Every traffic type is allowed, ``internal`` included: listing your other
  sites or a payment gateway under a source of type ``internal`` keeps
  returns from them out of the referral numbers.
* A click id with type ``ads`` is read in step (a); one with another type is
  a marker read in step (d), when there is no referrer.
* A host of a source of type ``internal`` or ``direct`` still returns the
  source's name (only the built-in same-site rule returns ``None``).
* ``$mediums`` and ``$paid_mediums`` keys are case-insensitive.

Every fault is reported at once as a :class:`~k50core.errors.ConfigError`
whose places look like ``sources.partner.hosts[0]`` or
``sources["mail.ru"].type``.
'''
from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from publicsuffixlist import PSLFILE, PublicSuffixList

from ..errors import ConfigError
from .url import MAX_FIELD, normalize_host

__all__ = ["TRAFFIC_TYPES", "SourceCatalogue"]

TRAFFIC_TYPES = ("search", "ads", "social", "messenger", "email", "referral", "direct", "internal")
_TYPES = frozenset(TRAFFIC_TYPES)
_EXPECTED_TYPES = ", ".join(TRAFFIC_TYPES)

# source name, main type, hosts, utm_source aliases
_SOURCES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    # search engines
    ("yandex", "search",
     ("yandex.ru", "ya.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua", "yandex.uz",
      "yandex.com.tr", "yandex.com.am", "yandex.com.ge", "yandex.az",
      "com.yandex.searchapp", "ru.yandex.searchplugin"),
     ("ya", "yandexdirect", "yandex_direct", "yandex-direct", "ya_direct", "ya-direct",
      "yadirect", "yandex.direct")),
    ("google", "search",
     ("google.com", "com.google.android.googlequicksearchbox"),
     ("adwords", "googleads", "google_ads", "google-ads", "google_adwords")),
    ("bing", "search", ("bing.com",), ()),
    ("duckduckgo", "search", ("duckduckgo.com",), ("ddg",)),
    ("yahoo", "search", ("yahoo.com",), ()),
    ("baidu", "search", ("baidu.com",), ()),
    ("mail.ru", "search", ("go.mail.ru", "search.mail.ru"), ("mailru", "mail_ru")),
    ("rambler", "search", ("rambler.ru",), ()),
    ("ecosia", "search", ("ecosia.org",), ()),
    ("brave", "search", ("search.brave.com",), ()),
    ("qwant", "search", ("qwant.com",), ()),
    ("startpage", "search", ("startpage.com",), ()),
    ("seznam", "search", ("seznam.cz",), ()),
    ("naver", "search", ("naver.com",), ()),
    ("ask", "search", ("ask.com",), ()),
    # social networks
    ("vk", "social", ("vk.com", "vk.ru", "vkontakte.ru", "vk.cc", "com.vkontakte.android"),
     ("vkontakte", "vkads", "vk_ads", "vk-ads")),
    ("ok", "social", ("ok.ru", "odnoklassniki.ru"), ("odnoklassniki",)),
    ("dzen", "social", ("dzen.ru", "zen.yandex.ru", "zen.yandex.com"), ("zen", "yandex_zen")),
    ("facebook", "social", ("facebook.com", "fb.com", "fb.me", "fb.watch"), ("fb",)),
    ("instagram", "social", ("instagram.com",), ("ig", "insta")),
    ("youtube", "social", ("youtube.com", "youtu.be"), ("yt",)),
    ("twitter", "social", ("twitter.com", "x.com", "t.co"), ()),
    ("linkedin", "social", ("linkedin.com", "lnkd.in"), ()),
    ("pinterest", "social", ("pinterest.com", "pin.it"), ()),
    ("reddit", "social", ("reddit.com", "redd.it"), ()),
    ("tiktok", "social", ("tiktok.com",), ()),
    ("pikabu", "social", ("pikabu.ru",), ()),
    ("livejournal", "social", ("livejournal.com", "livejournal.ru"), ("lj",)),
    ("rutube", "social", ("rutube.ru",), ()),
    ("threads", "social", ("threads.net",), ()),
    ("tumblr", "social", ("tumblr.com",), ()),
    # messengers
    ("telegram", "messenger",
     ("t.me", "telegram.me", "telegram.org", "org.telegram.messenger"), ("tg",)),
    ("whatsapp", "messenger", ("whatsapp.com", "wa.me", "com.whatsapp"), ("wa",)),
    ("viber", "messenger", ("viber.com",), ()),
    ("discord", "messenger", ("discord.com", "discord.gg"), ()),
    # web mail
    ("outlook", "email", ("outlook.live.com", "outlook.office.com", "outlook.office365.com",
                          "mail.live.com"), ()),
    ("proton", "email", ("mail.proton.me",), ()),
)

# hosts of a source with a type other than its main one: source, type, hosts
_EXTRA_HOSTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("yandex", "email", ("mail.yandex.ru", "mail.yandex.com", "mail.yandex.by", "mail.yandex.kz",
                         "mail.yandex.ua", "mail.yandex.uz", "mail.yandex.com.tr",
                         "ru.yandex.mail")),
    ("yandex", "ads", ("yabs.yandex.ru", "yabs.yandex.by", "yabs.yandex.kz", "yabs.yandex.com",
                       "an.yandex.ru")),
    ("yandex", "referral", ("passport.yandex.ru", "oauth.yandex.ru", "disk.yandex.ru")),
    ("google", "email", ("mail.google.com", "com.google.android.gm")),
    ("google", "ads", ("googleadservices.com", "googlesyndication.com", "doubleclick.net")),
    ("google", "referral", ("accounts.google.com", "docs.google.com", "drive.google.com")),
    ("mail.ru", "email", ("e.mail.ru",)),
    ("rambler", "email", ("mail.rambler.ru",)),
    ("yahoo", "email", ("mail.yahoo.com",)),
    ("vk", "messenger", ("vk.me",)),
    ("facebook", "messenger", ("messenger.com", "m.me")),
)

# a label that names the source under any country domain (google.co.uk)
_BRANDS = ("google", "yandex", "yahoo", "pinterest")

# click ids: parameter -> (source, type); "ads" ids mean paid, others are markers
_CLICK_IDS: tuple[tuple[str, str, str], ...] = (
    ("yclid", "yandex", "ads"),
    ("gclid", "google", "ads"),
    ("gbraid", "google", "ads"),
    ("wbraid", "google", "ads"),
    ("gclsrc", "google", "ads"),
    ("dclid", "google", "ads"),
    ("msclkid", "bing", "ads"),
    ("ttclid", "tiktok", "ads"),
    ("twclid", "twitter", "ads"),
    ("li_fat_id", "linkedin", "ads"),
    ("fbclid", "facebook", "social"),
    ("ysclid", "yandex", "search"),
    ("srsltid", "google", "search"),
)

_ORGANIC = "organic"  # marker: search unless utm_source is a social/messenger/email source
_PAID_MEDIUMS = ("cpc", "ppc", "cpm", "cpa", "cpv", "paid", "paidsearch", "paid_search",
                 "paid-search", "paid-social", "paid_social", "paidsocial", "display", "banner",
                 "retargeting", "remarketing", "ad", "ads", "context")
_MEDIUMS: dict[str, str] = {m: "ads" for m in _PAID_MEDIUMS}
_MEDIUMS.update({
    "organic": _ORGANIC, "search": "search", "seo": "search",
    "social": "social", "social-network": "social", "social_network": "social",
    "socialnetwork": "social", "social-media": "social", "social_media": "social",
    "smm": "social",
    "messenger": "messenger", "messengers": "messenger", "im": "messenger",
    "email": "email", "e-mail": "email", "e_mail": "email", "mail": "email",
    "newsletter": "email", "mailing": "email",
    "referral": "referral", "referrer": "referral", "referer": "referral", "link": "referral",
    "affiliate": "referral", "partner": "referral",
})
_MEDIUM_SEPARATORS = ("_", "-", ".", " ", "/", "|", ":")
_ORGANIC_KEEPS = frozenset({"social", "messenger", "email"})

# Hosting platforms, each subdomain a site of its own, that the Public Suffix List lacks (it has msk.ru,
# github.io, wixsite.com and their like): added to it, a line of its format each.
_MORE_PUBLIC_SUFFIXES = ("tilda.ws", "narod.ru", "ucoz.ru", "ucoz.net", "livejournal.com", "turbopages.org")
_SITE_CACHE = 16384  # hosts whose registrable domain is kept: referrers and landings repeat

_UTM_SOURCE = "utm_source"
_UTM_MEDIUM = "utm_medium"
_OVERRIDE_SOURCE_KEYS = ("type", "hosts", "aliases")
_OPTIONS = ("$mediums", "$paid_mediums", "$click_ids")
_HOST_NOT_ALLOWED = ":/?#@\\*"

Hit = tuple[str, str]


class SourceCatalogue:
    """Host and tag catalogue that classifies visits; see the module docstring.

    ``overrides`` is the config ``sources:`` section; ``place`` is the prefix
    of the places named in a :class:`~k50core.errors.ConfigError`.
    A catalogue is immutable after construction and safe to share between
    threads.
    """

    def __init__(self, overrides: Mapping | None = None, *, place: str = "sources") -> None:
        main: dict[str, str] = {}                  # source -> main type
        hosts: dict[str, tuple[str, str | None]] = {}  # host -> (source, own type or None)
        aliases: dict[str, str] = {}
        for name, kind, hs, al in _SOURCES:
            main[name] = kind
            for h in hs:
                hosts[h] = (name, None)
            for a in al:
                aliases[a] = name
        for name, kind, hs in _EXTRA_HOSTS:
            for h in hs:
                hosts[h] = (name, kind)
        mediums = dict(_MEDIUMS)
        click_ids: dict[str, Hit] = {k: (s, t) for k, s, t in _CLICK_IDS}

        if overrides is not None:
            _apply_overrides(overrides, place, main, hosts, aliases, mediums, click_ids)

        self._hosts: dict[str, Hit] = {
            h: (name, kind if kind is not None else main[name]) for h, (name, kind) in hosts.items()
        }
        self._brands: dict[str, Hit] = {b: (b, main[b]) for b in _BRANDS if b in main}
        self._names: dict[str, str] = dict(main)
        self._aliases = aliases
        self._mediums = mediums
        self._paid_ids: tuple[tuple[str, str], ...] = tuple(
            (k, s) for k, (s, t) in click_ids.items() if t == "ads")
        self._marker_ids: tuple[tuple[str, Hit], ...] = tuple(
            (k, (s, t)) for k, (s, t) in click_ids.items() if t != "ads")
        self._paid_id_set: frozenset[str] = frozenset(k for k, _ in self._paid_ids)
        self._marker_id_set: frozenset[str] = frozenset(k for k, _ in self._marker_ids)
        self._classifier: Any = None  # made on the first classify (a race makes two alike)

    # ----------------------------------------------------------- public

    def classify(self, landing_host: str | None, query: Mapping[str, str],
                 referrer_host: str | None) -> tuple[str | None, str]:
        """Return ``(source, traffic_type)`` of a visit. Never raises.

        *landing_host* and *referrer_host* are hosts as returned by
        :func:`~k50core.enrich.url.split_url` (a raw host or URL is
        normalised too); *query* is the landing page's query parameters.
        Anything of the wrong type counts as absent. Answered by the active
        build's ``Classifier`` (``k50core.IMPLEMENTATION``).
        """
        classifier = self._classifier
        if classifier is None:
            from .._impl import core  # here: the core imports this module

            classifier = self._classifier = core.Classifier(self)
        result: tuple[str | None, str] = classifier.classify(landing_host, query, referrer_host)
        return result

    def lookup(self, host: str | None) -> tuple[str, str] | None:
        """``(source, type)`` of a host in the catalogue, or ``None``."""
        h = _host_arg(host)
        return None if h is None else self._lookup(h)

    # ---------------------------------------------------------- helpers

    def _lookup(self, host: str) -> Hit | None:
        table = self._hosts
        brands = self._brands
        i = 0
        while True:
            hit = table.get(host[i:] if i else host)
            if hit is not None:
                return hit
            dot = host.find(".", i)
            if dot < 0:
                return None
            if brands and host[i:dot] in brands and _country_tail(host[dot + 1:]):
                return brands[host[i:dot]]
            i = dot + 1


# -------------------------------------------------------- classification aids


def _norm_value(value: object) -> str:
    """A query value stripped and lowercased; "" when absent or not a str."""
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        return ""
    return value.strip().lower()


def _host_arg(host: object) -> str | None:
    if host is None or host == "":
        return None
    return normalize_host(host)


def _strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") and len(host) > 4 else host


def _country_tail(tail: str) -> bool:
    """True for ``com``, ``<cc>``, ``co.<cc>``, ``com.<cc>``."""
    if tail == "com" or (len(tail) == 2 and tail.isascii() and tail.isalpha()):
        return True
    if len(tail) in (5, 6) and tail.isascii():
        first, _, cc = tail.partition(".")
        return first in ("co", "com") and len(cc) == 2 and cc.isalpha()
    return False


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    """The Public Suffix List that publicsuffixlist ships, with the platforms above; parsed once, on first
    use (about 0.1 s), not at import."""
    with open(PSLFILE, encoding="utf-8") as f:
        text = f.read()
    return PublicSuffixList(text + "\n" + "\n".join(_MORE_PUBLIC_SUFFIXES) + "\n")


@lru_cache(maxsize=_SITE_CACHE)
def _site(host: str) -> str:
    """Registrable domain (the public suffix and one label more); the host itself for an IP address, a
    single label or a public suffix."""
    if host[0] == "[":
        return host
    last = host.rfind(".")
    if last < 0 or host[last + 1:].isdigit():  # single label or IPv4
        return host
    return _suffixes().privatesuffix(host) or host


# ------------------------------------------------------------------ overrides


def _place(base: str, key: str) -> str:
    if key.isidentifier() or (key[:1] == "$" and key[1:].isidentifier()):
        return f"{base}.{key}" if base else key
    return f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def _check_name(value: object, what: str) -> str | None:
    """Problem with a source name / alias / medium / parameter, or None."""
    if not isinstance(value, str):
        return f"{what} must be a string, not {type(value).__name__}"
    if not value:
        return f"{what} must not be empty"
    if len(value) > 200:
        return f"{what} is longer than 200 characters"
    if not value.isprintable() or any(c.isspace() for c in value):
        return f"{what} {value!r} contains spaces or control characters"
    return None


def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple))


def _apply_overrides(overrides: object, place: str, main: dict[str, str],
                     hosts: dict[str, tuple[str, str | None]], aliases: dict[str, str],
                     mediums: dict[str, str], click_ids: dict[str, Hit]) -> None:
    problems: list[tuple[str, str]] = []
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"expected a mapping of sources, not {type(overrides).__name__}", place)

    builtin = dict(main)
    seen_hosts: dict[str, str] = {}    # host -> place it was first listed at
    seen_aliases: dict[str, str] = {}
    new_hosts: dict[str, tuple[str, str | None]] = {}
    new_aliases: dict[str, str] = {}

    for key, spec in overrides.items():
        if not isinstance(key, str):
            problems.append((place, f"source names must be strings, not {type(key).__name__} {key!r}"))
            continue
        here = _place(place, key)
        if key.startswith("$"):
            if key not in _OPTIONS:
                problems.append((here, f"unknown option {key!r} (expected one of {', '.join(_OPTIONS)})"))
            continue  # options are read after the sources
        problem = _check_name(key, "a source name")
        if problem is None and key != key.lower():
            problem = f"source names are lowercase: write {key.lower()!r}"
        if problem is not None:
            problems.append((here, problem))
            continue
        if not isinstance(spec, Mapping):
            problems.append((here, "expected a mapping with type, hosts and aliases, not "
                             f"{type(spec).__name__}"))
            continue
        for k in spec:
            if k not in _OVERRIDE_SOURCE_KEYS:
                problems.append((_place(here, str(k)),
                                 f"unknown key {k!r} (expected one of {', '.join(_OVERRIDE_SOURCE_KEYS)})"))
        kind = spec.get("type")
        if "type" in spec:
            if not isinstance(kind, str) or kind not in _TYPES:
                problems.append((f"{here}.type",
                                 f"unknown traffic type {kind!r} (expected one of {_EXPECTED_TYPES})"))
                kind = None
            else:
                main[key] = kind
        elif key not in builtin:
            problems.append((here, "a new source needs a type "
                             f"(one of {_EXPECTED_TYPES})"))
        if "hosts" in spec:
            hs = spec["hosts"]
            if not _is_list(hs):
                problems.append((f"{here}.hosts", f"expected a list of host names, not {type(hs).__name__}"))
            else:
                for i, raw in enumerate(hs):
                    at = f"{here}.hosts[{i}]"
                    host, problem = _check_host(raw)
                    if problem is not None:
                        problems.append((at, problem))
                    elif host in seen_hosts:
                        problems.append((at, f"host {host!r} is already listed at {seen_hosts[host]}"))
                    else:
                        seen_hosts[host] = at
                        new_hosts[host] = (key, None)
        if "aliases" in spec:
            al = spec["aliases"]
            if not _is_list(al):
                problems.append((f"{here}.aliases",
                                 f"expected a list of utm_source values, not {type(al).__name__}"))
            else:
                for i, raw in enumerate(al):
                    at = f"{here}.aliases[{i}]"
                    problem = _check_name(raw, "an alias")
                    if problem is not None:
                        problems.append((at, problem))
                        continue
                    alias = raw.strip().lower()
                    if alias in seen_aliases:
                        problems.append((at, f"alias {alias!r} is already listed at {seen_aliases[alias]}"))
                    elif alias != key and (alias in main or alias in overrides):
                        problems.append((at, f"{alias!r} is the name of a source"))
                    else:
                        seen_aliases[alias] = at
                        new_aliases[alias] = key

    if "$mediums" in overrides:
        _read_mediums(overrides["$mediums"], _place(place, "$mediums"), mediums, problems)
    if "$paid_mediums" in overrides:
        at = _place(place, "$paid_mediums")
        pm = overrides["$paid_mediums"]
        if not _is_list(pm):
            problems.append((at, f"expected a list of utm_medium values, not {type(pm).__name__}"))
        else:
            listed = overrides.get("$mediums")
            given: Mapping[Any, Any] = listed if isinstance(listed, Mapping) else {}
            given_norm: dict[str, Any] = {k.strip().lower(): v for k, v in given.items() if isinstance(k, str)}
            for i, raw in enumerate(pm):
                problem = _check_name(raw, "a medium")
                if problem is not None:
                    problems.append((f"{at}[{i}]", problem))
                    continue
                m = raw.strip().lower()
                if m in given_norm and given_norm[m] != "ads":
                    other = given_norm[m]
                    said = "removed" if other is None else f"given type {other!r}"
                    problems.append((f"{at}[{i}]", f"medium {m!r} is also {said} in $mediums"))
                    continue
                mediums[m] = "ads"
    if "$click_ids" in overrides:
        _read_click_ids(overrides["$click_ids"], _place(place, "$click_ids"), click_ids, problems)

    if problems:
        raise ConfigError(problems)
    # an override host replaces any built-in entry for it; aliases likewise
    hosts.update(new_hosts)
    aliases.update(new_aliases)


def _check_host(raw: object) -> tuple[str, str | None]:
    """(normalised host, problem or None) for a host of an override."""
    if not isinstance(raw, str):
        return "", f"a host name must be a string, not {type(raw).__name__}"
    text = raw.strip()
    if not text:
        return "", "a host name must not be empty"
    if text.startswith("*."):
        return "", f"{raw!r}: drop '*.'; a host already matches its subdomains"
    if any(c in text for c in _HOST_NOT_ALLOWED) or any(c.isspace() for c in text):
        hint = normalize_host(text) if "*" not in text else None
        if hint and not any(c in hint for c in _HOST_NOT_ALLOWED) and _check_host(hint)[1] is None:
            suggestion = f" (write {hint!r})"
        else:
            suggestion = ""
        return "", f"{raw!r} is not a host name{suggestion}"
    host = normalize_host(text)
    if host is None:
        return "", f"{raw!r} is not a valid host name"
    if "." not in host:
        return "", f"{raw!r} is a top-level domain; it would match every site under it"
    if not host.rpartition(".")[2].isdigit() and _site("x." + host) == "x." + host:
        return "", f"{raw!r} is a public suffix; it would match every site under it"
    return host, None


def _read_mediums(spec: object, at: str, mediums: dict[str, str], problems: list[tuple[str, str]]) -> None:
    if not isinstance(spec, Mapping):
        problems.append((at, f"expected a mapping of utm_medium to traffic type, not {type(spec).__name__}"))
        return
    for raw, kind in spec.items():
        problem = _check_name(raw, "a medium")
        here = _place(at, raw) if isinstance(raw, str) and raw else at
        if problem is not None:
            problems.append((here, problem))
            continue
        m = raw.strip().lower()
        if kind is None:
            mediums.pop(m, None)
        elif not isinstance(kind, str) or kind not in _TYPES:
            problems.append((here, f"unknown traffic type {kind!r} (expected one of {_EXPECTED_TYPES})"))
        else:
            mediums[m] = kind


def _read_click_ids(spec: object, at: str, click_ids: dict[str, Hit],
                    problems: list[tuple[str, str]]) -> None:
    if not isinstance(spec, Mapping):
        problems.append((at, f"expected a mapping of query parameter to source, not {type(spec).__name__}"))
        return
    for param, value in spec.items():
        problem = _check_name(param, "a click id parameter")
        if problem is None and ("=" in param or "&" in param):
            problem = f"{param!r} cannot be a query parameter name"
        here = _place(at, param) if isinstance(param, str) and param else at
        if problem is not None:
            problems.append((here, problem))
            continue
        if value is None:
            click_ids.pop(param, None)
            continue
        kind: Any = "ads"
        if isinstance(value, Mapping):
            for k in value:
                if k not in ("source", "type"):
                    problems.append((_place(here, str(k)), f"unknown key {k!r} (expected source, type)"))
            source = value.get("source")
            if "type" in value:
                kind = value["type"]
                if not isinstance(kind, str) or kind not in _TYPES:
                    problems.append((f"{here}.type",
                                     f"unknown traffic type {kind!r} (expected one of {_EXPECTED_TYPES})"))
                    continue
            where = f"{here}.source"
        else:
            source = value
            where = here
        problem = _check_name(source, "a source name")
        if problem is None and isinstance(source, str) and source != source.lower():
            problem = f"source names are lowercase: write {source.lower()!r}"
        if problem is not None:
            problems.append((where, problem))
            continue
        click_ids[param] = (str(source), kind)
