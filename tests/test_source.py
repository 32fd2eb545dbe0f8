"""k50core.enrich.source: traffic source and traffic type of a visit."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from k50core.enrich.source import TRAFFIC_TYPES, SourceCatalogue
from k50core.enrich.url import host_of, split_url
from k50core.errors import ConfigError

CAT = SourceCatalogue()
SITE = "shop.example.ru"


def classify(query=None, referrer=None, landing=SITE, cat=CAT):
    return cat.classify(landing, query or {}, referrer)


def visit(url, referrer, cat=CAT):
    """Classify the way the engine does: split the page URL, host of the referrer."""
    host, _, query = split_url(url)
    return cat.classify(host, query, host_of(referrer))


# --------------------------------------------------------- referrer catalogue


@pytest.mark.parametrize(
    "referrer, expected",
    [
        # Russian search engines
        ("yandex.ru", ("yandex", "search")),
        ("www.yandex.ru", ("yandex", "search")),
        ("ya.ru", ("yandex", "search")),
        ("yandex.com", ("yandex", "search")),
        ("yandex.kz", ("yandex", "search")),
        ("yandex.by", ("yandex", "search")),
        ("yandex.ua", ("yandex", "search")),
        ("yandex.com.tr", ("yandex", "search")),
        ("yandex.uz", ("yandex", "search")),
        ("yandex.fr", ("yandex", "search")),  # any country domain
        ("go.mail.ru", ("mail.ru", "search")),
        ("search.mail.ru", ("mail.ru", "search")),
        ("rambler.ru", ("rambler", "search")),
        ("nova.rambler.ru", ("rambler", "search")),
        # global search engines
        ("google.com", ("google", "search")),
        ("www.google.com", ("google", "search")),
        ("google.ru", ("google", "search")),
        ("www.google.de", ("google", "search")),
        ("google.co.uk", ("google", "search")),
        ("www.google.co.jp", ("google", "search")),
        ("google.com.tr", ("google", "search")),
        ("google.com.br", ("google", "search")),
        ("bing.com", ("bing", "search")),
        ("www.bing.com", ("bing", "search")),
        ("duckduckgo.com", ("duckduckgo", "search")),
        ("search.yahoo.com", ("yahoo", "search")),
        ("yahoo.co.jp", ("yahoo", "search")),
        ("www.baidu.com", ("baidu", "search")),
        ("www.ecosia.org", ("ecosia", "search")),
        ("search.brave.com", ("brave", "search")),
        # social networks
        ("vk.com", ("vk", "social")),
        ("m.vk.com", ("vk", "social")),
        ("away.vk.com", ("vk", "social")),
        ("vk.ru", ("vk", "social")),
        ("ok.ru", ("ok", "social")),
        ("m.ok.ru", ("ok", "social")),
        ("dzen.ru", ("dzen", "social")),
        ("zen.yandex.ru", ("dzen", "social")),
        ("facebook.com", ("facebook", "social")),
        ("l.facebook.com", ("facebook", "social")),
        ("m.facebook.com", ("facebook", "social")),
        ("lm.facebook.com", ("facebook", "social")),
        ("instagram.com", ("instagram", "social")),
        ("l.instagram.com", ("instagram", "social")),
        ("www.youtube.com", ("youtube", "social")),
        ("youtu.be", ("youtube", "social")),
        ("twitter.com", ("twitter", "social")),
        ("x.com", ("twitter", "social")),
        ("t.co", ("twitter", "social")),
        ("www.linkedin.com", ("linkedin", "social")),
        ("lnkd.in", ("linkedin", "social")),
        ("ru.pinterest.com", ("pinterest", "social")),
        ("pinterest.ru", ("pinterest", "social")),
        ("www.reddit.com", ("reddit", "social")),
        ("www.tiktok.com", ("tiktok", "social")),
        ("pikabu.ru", ("pikabu", "social")),
        ("someone.livejournal.com", ("livejournal", "social")),
        ("rutube.ru", ("rutube", "social")),
        # messengers
        ("t.me", ("telegram", "messenger")),
        ("telegram.org", ("telegram", "messenger")),
        ("web.telegram.org", ("telegram", "messenger")),
        ("whatsapp.com", ("whatsapp", "messenger")),
        ("web.whatsapp.com", ("whatsapp", "messenger")),
        ("wa.me", ("whatsapp", "messenger")),
        ("invite.viber.com", ("viber", "messenger")),
        ("vk.me", ("vk", "messenger")),
        # web mail: the most specific entry wins over the search portal
        ("mail.yandex.ru", ("yandex", "email")),
        ("mail.yandex.com", ("yandex", "email")),
        ("e.mail.ru", ("mail.ru", "email")),
        ("mail.google.com", ("google", "email")),
        ("outlook.live.com", ("outlook", "email")),
        ("mail.rambler.ru", ("rambler", "email")),
        ("mail.yahoo.com", ("yahoo", "email")),
        # ad servers and non-search pages of search companies
        ("yabs.yandex.ru", ("yandex", "ads")),
        ("www.googleadservices.com", ("google", "ads")),
        ("tpc.googlesyndication.com", ("google", "ads")),
        ("accounts.google.com", ("google", "referral")),
        ("passport.yandex.ru", ("yandex", "referral")),
        # Android app referrers
        ("com.google.android.googlequicksearchbox", ("google", "search")),
        ("com.google.android.gm", ("google", "email")),
        ("org.telegram.messenger", ("telegram", "messenger")),
        # anything else is a referral named by its host
        ("habr.com", ("habr.com", "referral")),
        ("www.vc.ru", ("vc.ru", "referral")),
        ("news.mail.ru", ("news.mail.ru", "referral")),
        ("www", ("www", "referral")),
        ("127.0.0.1", ("127.0.0.1", "referral")),
        # look-alikes are not the real thing
        ("google.evil.com", ("google.evil.com", "referral")),
        ("notgoogle.com", ("notgoogle.com", "referral")),
        ("myvk.com", ("myvk.com", "referral")),
        ("yandex.ru.evil.com", ("yandex.ru.evil.com", "referral")),
    ],
)
def test_referrer_catalogue(referrer, expected):
    assert classify(referrer=referrer) == expected


@pytest.mark.parametrize(
    "url, referrer, expected",
    [
        ("https://shop.example.ru/", "https://www.google.co.uk/search?q=x", ("google", "search")),
        ("https://shop.example.ru/", "https://yandex.ru/search/?text=okna", ("yandex", "search")),
        ("https://shop.example.ru/", "https://l.facebook.com/l.php?u=x", ("facebook", "social")),
        ("https://shop.example.ru/", "android-app://com.google.android.gm/", ("google", "email")),
        ("https://shop.example.ru/", "https://WWW.Partner.RU:443/", ("partner.ru", "referral")),
        ("https://shop.example.ru/", "", (None, "direct")),
        ("https://shop.example.ru/", None, (None, "direct")),
        ("https://shop.example.ru/", "garbage", (None, "direct")),
        ("https://shop.example.ru/a", "https://shop.example.ru/b", (None, "internal")),
        ("https://example.ru/?utm_source=vk&utm_medium=cpc", "https://vk.com/", ("vk", "ads")),
        ("https://example.ru/?gclid=abc", "https://www.google.ru/", ("google", "ads")),
        ("https://example.ru/?yclid=123", "https://yandex.ru/", ("yandex", "ads")),
        ("https://example.ru/?ysclid=l1", "", ("yandex", "search")),
    ],
)
def test_visits(url, referrer, expected):
    assert visit(url, referrer) == expected


# -------------------------------------------------------------------- internal


@pytest.mark.parametrize(
    "landing, referrer",
    [
        ("example.ru", "example.ru"),
        ("example.ru", "www.example.ru"),
        ("www.example.ru", "example.ru"),
        ("shop.example.ru", "blog.example.ru"),
        ("a.example.co.uk", "b.example.co.uk"),
        ("a.example.com.ru", "example.com.ru"),
        ("site.spb.ru", "www.site.spb.ru"),
        ("example.com.tr", "www.example.com.tr"),
        ("EXAMPLE.ru", "https://Example.RU/page"),
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]", "[::1]"),
        ("google.ru", "www.google.ru"),  # the site itself wins over the catalogue
        ("shop.example.org.au", "blog.example.org.au"),  # Public Suffix List suffixes no hand table had
        ("a.example.kyoto.jp", "b.example.kyoto.jp"),
    ],
)
def test_internal(landing, referrer):
    assert classify(landing=landing, referrer=referrer) == (None, "internal")


@pytest.mark.parametrize(
    "landing, referrer, expected",
    [
        ("example.ru", "example.com", ("example.com", "referral")),
        ("a.example.co.uk", "b.other.co.uk", ("b.other.co.uk", "referral")),
        ("one.com.ru", "two.com.ru", ("two.com.ru", "referral")),
        ("me.github.io", "you.github.io", ("you.github.io", "referral")),
        ("shop.tilda.ws", "other.tilda.ws", ("other.tilda.ws", "referral")),
        ("me.narod.ru", "you.narod.ru", ("you.narod.ru", "referral")),
        ("a.s3.amazonaws.com", "b.s3.amazonaws.com", ("b.s3.amazonaws.com", "referral")),  # from the list
        ("a.example.kyoto.jp", "b.other.kyoto.jp", ("b.other.kyoto.jp", "referral")),
        ("10.0.0.1", "10.0.0.2", ("10.0.0.2", "referral")),
        (None, "www.example.ru", ("example.ru", "referral")),
    ],
)
def test_not_internal(landing, referrer, expected):
    assert classify(landing=landing, referrer=referrer) == expected


# ------------------------------------------------------------------------ ads


@pytest.mark.parametrize(
    "query, referrer, expected",
    [
        ({"utm_source": "yandex", "utm_medium": "cpc"}, None, ("yandex", "ads")),
        ({"utm_source": "Yandex ", "utm_medium": " CPC"}, None, ("yandex", "ads")),
        ({"utm_source": "ya", "utm_medium": "cpc"}, None, ("yandex", "ads")),
        ({"utm_source": "yandex_direct", "utm_medium": "cpc"}, None, ("yandex", "ads")),
        ({"utm_source": "yandex.ru", "utm_medium": "cpm"}, None, ("yandex", "ads")),
        ({"utm_source": "google", "utm_medium": "ppc"}, None, ("google", "ads")),
        ({"utm_source": "adwords", "utm_medium": "cpc"}, None, ("google", "ads")),
        ({"utm_source": "vkads", "utm_medium": "cpc"}, None, ("vk", "ads")),
        ({"utm_source": "fb", "utm_medium": "paid-social"}, None, ("facebook", "ads")),
        ({"utm_source": "mytarget", "utm_medium": "cpc"}, None, ("mytarget", "ads")),
        ({"utm_source": "www.Partner.ru", "utm_medium": "cpa"}, None, ("partner.ru", "ads")),
        ({"utm_source": "yandex", "utm_medium": "context"}, None, ("yandex", "ads")),
        ({"utm_source": "yandex", "utm_medium": "retargeting"}, None, ("yandex", "ads")),
        ({"utm_source": "x", "utm_medium": "display"}, None, ("x", "ads")),
        ({"utm_medium": "banner"}, None, (None, "ads")),
        ({"utm_medium": "cpc"}, "www.google.ru", ("google", "ads")),
        ({"utm_medium": "cpc"}, "partner.ru", ("partner.ru", "ads")),
        ({"utm_medium": "cpc"}, "blog.example.ru", (None, "ads")),
        ({"utm_medium": "cpc_search"}, None, (None, "ads")),  # first word of a compound medium
        ({"utm_medium": "cpm-banner"}, None, (None, "ads")),
        ({"utm_medium": "paidsearch"}, None, (None, "ads")),
        # click ids
        ({"yclid": "2361"}, None, ("yandex", "ads")),
        ({"yclid": "2361"}, "yandex.ru", ("yandex", "ads")),
        ({"gclid": "Cj0K"}, None, ("google", "ads")),
        ({"gbraid": "0AA"}, None, ("google", "ads")),
        ({"wbraid": "0AA"}, None, ("google", "ads")),
        ({"gclsrc": "aw.ds"}, None, ("google", "ads")),
        ({"dclid": "x"}, None, ("google", "ads")),
        ({"msclkid": "x"}, "bing.com", ("bing", "ads")),
        ({"ttclid": "x"}, None, ("tiktok", "ads")),
        ({"twclid": "x"}, None, ("twitter", "ads")),
        ({"li_fat_id": "x"}, None, ("linkedin", "ads")),
        ({"gclid": "x", "utm_source": "google_ads"}, None, ("google", "ads")),
        ({"gclid": "x", "utm_source": "newsletter", "utm_medium": "email"}, None, ("newsletter", "ads")),
        ({"yclid": "1", "gclid": "2"}, None, ("yandex", "ads")),  # fixed priority
        ({"gclid": ""}, None, (None, "direct")),  # an empty click id is no click id
        ({"gclid": "  "}, "vk.com", ("vk", "social")),
        ({"GCLID": "x"}, None, (None, "direct")),  # parameter names are case-sensitive
    ],
)
def test_ads(query, referrer, expected):
    assert classify(query, referrer) == expected


@pytest.mark.parametrize(
    "query, referrer, expected",
    [
        # fbclid is added to every Facebook link: social, not ads
        ({"fbclid": "IwAR"}, None, ("facebook", "social")),
        ({"fbclid": "IwAR"}, "l.facebook.com", ("facebook", "social")),
        ({"fbclid": "IwAR"}, "l.instagram.com", ("instagram", "social")),
        ({"fbclid": "IwAR"}, "partner.ru", ("partner.ru", "referral")),
        ({"fbclid": "IwAR"}, "www.example.ru", (None, "internal")),
        ({"fbclid": "IwAR", "utm_medium": "cpc"}, None, ("facebook", "ads")),
        ({"fbclid": "IwAR", "utm_medium": "paid_social", "utm_source": "ig"}, None, ("instagram", "ads")),
        ({"ysclid": "lw1"}, None, ("yandex", "search")),
        ({"srsltid": "Af"}, None, ("google", "search")),
        ({"ysclid": "lw1"}, "dzen.ru", ("dzen", "social")),
    ],
)
def test_organic_click_markers(query, referrer, expected):
    assert classify(query, referrer) == expected


# ------------------------------------------------------------------ utm tags


@pytest.mark.parametrize(
    "query, referrer, expected",
    [
        ({"utm_source": "google", "utm_medium": "organic"}, None, ("google", "search")),
        ({"utm_source": "vk", "utm_medium": "organic"}, None, ("vk", "social")),
        ({"utm_source": "telegram", "utm_medium": "organic"}, None, ("telegram", "messenger")),
        ({"utm_source": "blog", "utm_medium": "organic"}, None, ("blog", "search")),
        ({"utm_source": "vk", "utm_medium": "social"}, None, ("vk", "social")),
        ({"utm_source": "vkontakte", "utm_medium": "smm"}, None, ("vk", "social")),
        ({"utm_source": "tg", "utm_medium": "messenger"}, None, ("telegram", "messenger")),
        ({"utm_source": "whatsapp", "utm_medium": "messenger"}, None, ("whatsapp", "messenger")),
        ({"utm_source": "sendpulse", "utm_medium": "email"}, None, ("sendpulse", "email")),
        ({"utm_source": "unisender", "utm_medium": "E-Mail"}, None, ("unisender", "email")),
        ({"utm_source": "digest", "utm_medium": "newsletter"}, None, ("digest", "email")),
        ({"utm_source": "digest", "utm_medium": "email_march"}, None, ("digest", "email")),
        ({"utm_source": "habr", "utm_medium": "referral"}, None, ("habr", "referral")),
        ({"utm_source": "cityads", "utm_medium": "affiliate"}, None, ("cityads", "referral")),
        # medium without source: the source comes from the referrer
        ({"utm_medium": "email"}, "e.mail.ru", ("mail.ru", "email")),
        ({"utm_medium": "email"}, None, (None, "email")),
        ({"utm_medium": "social"}, "m.vk.com", ("vk", "social")),
        # source without medium: the catalogue type of the source, else referral
        ({"utm_source": "google"}, None, ("google", "search")),
        ({"utm_source": "yandex"}, "vk.com", ("yandex", "search")),
        ({"utm_source": "vk"}, None, ("vk", "social")),
        ({"utm_source": "t.me"}, None, ("telegram", "messenger")),
        ({"utm_source": "mail.yandex.ru"}, None, ("yandex", "email")),
        ({"utm_source": "https://www.google.com/"}, None, ("google", "search")),
        ({"utm_source": "partner"}, None, ("partner", "referral")),
        ({"utm_source": "www.partner.ru"}, None, ("partner.ru", "referral")),
        # an unknown medium behaves like no medium
        ({"utm_source": "vk", "utm_medium": "post"}, None, ("vk", "social")),
        ({"utm_source": "qr", "utm_medium": "offline"}, None, ("qr", "referral")),
        # tags win over the referrer, even an internal one
        ({"utm_source": "vk", "utm_medium": "social"}, "www.example.ru", ("vk", "social")),
        # empty tags are no tags
        ({"utm_source": " ", "utm_medium": ""}, "vk.com", ("vk", "social")),
        # non-str values are ignored
        ({"utm_source": 5, "utm_medium": None}, "vk.com", ("vk", "social")),
    ],
)
def test_utm(query, referrer, expected):
    assert classify(query, referrer) == expected


def test_direct():
    assert classify() == (None, "direct")
    assert classify({"page": "2"}) == (None, "direct")
    assert classify(landing=None) == (None, "direct")
    assert CAT.classify(None, None, None) == (None, "direct")


def test_odd_arguments():
    assert CAT.classify(b"example.ru", {}, b"vk.com") == ("vk", "social")
    assert CAT.classify("example.ru", ["utm_source"], "vk.com") == ("vk", "social")
    assert CAT.classify("example.ru", {}, "https://VK.com/feed") == ("vk", "social")
    assert CAT.classify(42, {}, 3.5) == (None, "direct")
    assert CAT.classify("example.ru", {1: 2, (3,): None}, None) == (None, "direct")


def test_lookup():
    assert CAT.lookup("mail.yandex.ru") == ("yandex", "email")
    assert CAT.lookup("WWW.Google.Co.UK.") == ("google", "search")
    assert CAT.lookup("example.ru") is None
    assert CAT.lookup(None) is None


# ------------------------------------------------------------------ overrides


def test_override_new_source():
    cat = SourceCatalogue({"partner": {"hosts": ["partner.ru", "Partner-Shop.COM"], "type": "referral"}})
    assert classify(referrer="partner.ru", cat=cat) == ("partner", "referral")
    assert classify(referrer="www.partner-shop.com", cat=cat) == ("partner", "referral")
    assert classify({"utm_source": "partner"}, cat=cat) == ("partner", "referral")
    assert classify(referrer="vk.com", cat=cat) == ("vk", "social")  # built-ins stay


def test_override_aliases_and_idn():
    cat = SourceCatalogue({"partner": {"type": "social", "hosts": ["xn--80aswg.xn--p1ai"],
                                        "aliases": ["Partner_RU", "p"]}})
    assert classify(referrer="сайт.рф", cat=cat) == ("partner", "social")
    assert classify(referrer="http://xn--80aswg.xn--p1ai/", cat=cat) == ("partner", "social")
    assert classify({"utm_source": "partner_ru", "utm_medium": "cpc"}, cat=cat) == ("partner", "ads")
    assert classify({"utm_source": "P"}, cat=cat) == ("partner", "social")


def test_override_adds_hosts_to_builtin():
    cat = SourceCatalogue({"vk": {"hosts": ["vk.link"]}, "telegram": {"hosts": ["tgstat.ru"]}})
    assert classify(referrer="vk.link", cat=cat) == ("vk", "social")
    assert classify(referrer="tgstat.ru", cat=cat) == ("telegram", "messenger")


def test_override_changes_builtin_type():
    cat = SourceCatalogue({"yandex": {"type": "referral"}, "google": {"type": "internal"}})
    assert classify(referrer="yandex.ru", cat=cat) == ("yandex", "referral")
    assert classify(referrer="mail.yandex.ru", cat=cat) == ("yandex", "email")  # own type kept
    assert classify(referrer="yabs.yandex.ru", cat=cat) == ("yandex", "ads")
    assert classify(referrer="google.co.uk", cat=cat) == ("google", "internal")  # country domains
    assert classify({"utm_source": "ya"}, cat=cat) == ("yandex", "referral")
    assert classify(referrer="yandex.ru") == ("yandex", "search")  # other catalogues untouched


def test_override_host_moves_to_another_source():
    cat = SourceCatalogue({"myshop": {"type": "internal", "hosts": ["pay.example.com", "zen.yandex.ru"]}})
    assert classify(referrer="pay.example.com", cat=cat) == ("myshop", "internal")
    assert classify(referrer="zen.yandex.ru", cat=cat) == ("myshop", "internal")
    assert classify(referrer="dzen.ru", cat=cat) == ("dzen", "social")


def test_override_mediums():
    cat = SourceCatalogue({
        "$mediums": {"SMS": "messenger", "push": "messenger", "context": None, "qr": "direct"},
        "$paid_mediums": ["promo", "CPC_VK"],
    })
    assert classify({"utm_source": "smsc", "utm_medium": "sms"}, cat=cat) == ("smsc", "messenger")
    assert classify({"utm_source": "yandex", "utm_medium": "context"}, cat=cat) == ("yandex", "search")
    assert classify({"utm_source": "vk", "utm_medium": "promo"}, cat=cat) == ("vk", "ads")
    assert classify({"utm_source": "vk", "utm_medium": "cpc_vk"}, cat=cat) == ("vk", "ads")
    assert classify({"utm_source": "flyer", "utm_medium": "qr"}, cat=cat) == ("flyer", "direct")
    assert classify({"utm_source": "yandex", "utm_medium": "context"}) == ("yandex", "ads")


def test_override_click_ids():
    cat = SourceCatalogue({"$click_ids": {
        "vkclid": "vk",
        "mc_cid": {"source": "mailchimp", "type": "email"},
        "fbclid": None,
        "gclid": {"source": "google"},
    }})
    assert classify({"vkclid": "1"}, cat=cat) == ("vk", "ads")
    assert classify({"mc_cid": "1"}, cat=cat) == ("mailchimp", "email")
    assert classify({"mc_cid": "1"}, "vk.com", cat=cat) == ("vk", "social")
    assert classify({"fbclid": "1"}, cat=cat) == (None, "direct")
    assert classify({"gclid": "1"}, cat=cat) == ("google", "ads")


def test_override_empty_and_place():
    assert classify(referrer="vk.com", cat=SourceCatalogue({})) == ("vk", "social")
    with pytest.raises(ConfigError) as err:
        SourceCatalogue({"partner": {"type": "socail"}}, place="sites[2].sources")
    assert err.value.problems[0][0] == "sites[2].sources.partner.type"


def _problems(overrides):
    with pytest.raises(ConfigError) as err:
        SourceCatalogue(overrides)
    return dict(err.value.problems)


def test_override_error_message_for_type():
    with pytest.raises(ConfigError) as err:
        SourceCatalogue({"partner": {"hosts": ["partner.ru"], "type": "socail"}})
    assert str(err.value) == (
        "sources.partner.type: unknown traffic type 'socail' (expected one of search, ads, "
        "social, messenger, email, referral, direct, internal)"
    )
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    "overrides, place, words",
    [
        ([], "sources", "expected a mapping"),
        ("partner", "sources", "expected a mapping"),
        ({"partner": ["partner.ru"]}, "sources.partner", "expected a mapping"),
        ({"partner": None}, "sources.partner", "expected a mapping"),
        ({"partner": {"hosts": ["partner.ru"]}}, "sources.partner", "needs a type"),
        ({"partner": {"type": 5}}, "sources.partner.type", "unknown traffic type 5"),
        ({"partner": {"type": "Social"}}, "sources.partner.type", "unknown traffic type 'Social'"),
        ({"partner": {"type": "social", "host": ["a.ru"]}}, "sources.partner.host", "unknown key 'host'"),
        ({"partner": {"type": "social", "hosts": "partner.ru"}}, "sources.partner.hosts", "expected a list"),
        ({"partner": {"type": "social", "hosts": {"a": 1}}}, "sources.partner.hosts", "expected a list"),
        ({"partner": {"type": "social", "hosts": [5]}}, "sources.partner.hosts[0]", "must be a string"),
        ({"partner": {"type": "social", "hosts": [""]}}, "sources.partner.hosts[0]", "must not be empty"),
        ({"partner": {"type": "social", "hosts": ["ok.ru", "https://partner.ru/x"]}},
         "sources.partner.hosts[1]", "not a host name (write 'partner.ru')"),
        ({"partner": {"type": "social", "hosts": ["partner.ru:8080"]}}, "sources.partner.hosts[0]", "not a host name"),
        ({"partner": {"type": "social", "hosts": ["[::1]"]}}, "sources.partner.hosts[0]", "not a host name"),
        ({"partner": {"type": "social", "hosts": ["::1"]}}, "sources.partner.hosts[0]", "not a host name"),
        ({"partner": {"type": "social", "hosts": ["https://ru/"]}}, "sources.partner.hosts[0]", "not a host name"),
        ({"partner": {"type": "social", "hosts": ["*.partner.ru"]}}, "sources.partner.hosts[0]", "drop '*.'"),
        ({"partner": {"type": "social", "hosts": ["part ner.ru"]}}, "sources.partner.hosts[0]", "not a host name"),
        ({"partner": {"type": "social", "hosts": ["partner..ru"]}}, "sources.partner.hosts[0]", "not a valid host"),
        ({"partner": {"type": "social", "hosts": ["ru"]}}, "sources.partner.hosts[0]", "top-level domain"),
        ({"partner": {"type": "social", "hosts": ["co.uk"]}}, "sources.partner.hosts[0]", "public suffix"),
        ({"partner": {"type": "social", "hosts": ["com.ru"]}}, "sources.partner.hosts[0]", "public suffix"),
        ({"partner": {"type": "social", "hosts": ["a.ru", "A.RU."]}}, "sources.partner.hosts[1]",
         "already listed at sources.partner.hosts[0]"),
        ({"a": {"type": "social", "hosts": ["a.ru"]}, "b": {"type": "social", "hosts": ["a.ru"]}},
         "sources.b.hosts[0]", "already listed at sources.a.hosts[0]"),
        ({"partner": {"type": "social", "aliases": "p"}}, "sources.partner.aliases", "expected a list"),
        ({"partner": {"type": "social", "aliases": ["vk"]}}, "sources.partner.aliases[0]", "name of a source"),
        ({"partner": {"type": "social", "aliases": ["a b"]}}, "sources.partner.aliases[0]", "spaces"),
        ({"Partner": {"type": "social"}}, "sources.Partner", "lowercase: write 'partner'"),
        ({"my partner": {"type": "social"}}, 'sources["my partner"]', "spaces"),
        ({"": {"type": "social"}}, 'sources[""]', "must not be empty"),
        ({5: {"type": "social"}}, "sources", "must be strings"),
        ({"mail.ru": {"type": "socail"}}, 'sources["mail.ru"].type', "unknown traffic type"),
        ({"$paid": ["x"]}, "sources.$paid", "unknown option '$paid'"),
        ({"$mediums": ["sms"]}, "sources.$mediums", "expected a mapping"),
        ({"$mediums": {"sms": "sms"}}, "sources.$mediums.sms", "unknown traffic type 'sms'"),
        ({"$mediums": {"e-mail": 1}}, 'sources.$mediums["e-mail"]', "unknown traffic type 1"),
        ({"$mediums": {"": "ads"}}, "sources.$mediums", "must not be empty"),
        ({"$paid_mediums": "cpc"}, "sources.$paid_mediums", "expected a list"),
        ({"$paid_mediums": [None]}, "sources.$paid_mediums[0]", "must be a string"),
        ({"$paid_mediums": ["sms"], "$mediums": {"sms": "messenger"}}, "sources.$paid_mediums[0]",
         "also given type 'messenger'"),
        ({"$click_ids": ["vkclid"]}, "sources.$click_ids", "expected a mapping"),
        ({"$click_ids": {"vkclid": 5}}, "sources.$click_ids.vkclid", "must be a string"),
        ({"$click_ids": {"vkclid": "VK"}}, "sources.$click_ids.vkclid", "lowercase"),
        ({"$click_ids": {"a=b": "vk"}}, 'sources.$click_ids["a=b"]', "cannot be a query parameter"),
        ({"$click_ids": {"x": {"source": "vk", "type": "paid"}}}, "sources.$click_ids.x.type",
         "unknown traffic type 'paid'"),
        ({"$click_ids": {"x": {"source": "vk", "kind": "ads"}}}, "sources.$click_ids.x.kind", "unknown key"),
        ({"$click_ids": {"x": {"type": "ads"}}}, "sources.$click_ids.x.source", "must be a string"),
    ],
)
def test_override_errors(overrides, place, words):
    problems = _problems(overrides)
    assert place in problems, problems
    assert words in problems[place], problems[place]


def test_override_errors_are_all_reported():
    problems = _problems({
        "partner": {"type": "socail", "hosts": ["ok", 5]},
        "$mediums": {"sms": "sms"},
        "$click_ids": {"vkclid": None, "x": 1},
    })
    assert set(problems) == {
        "sources.partner.type", "sources.partner.hosts[0]", "sources.partner.hosts[1]",
        "sources.$mediums.sms", "sources.$click_ids.x",
    }


def test_failed_override_leaves_nothing_behind():
    with pytest.raises(ConfigError):
        SourceCatalogue({"vk": {"type": "ads"}, "x": {"type": "bad"}})
    assert SourceCatalogue().classify(SITE, {}, "vk.com") == ("vk", "social")


def test_types_are_complete():
    assert TRAFFIC_TYPES == ("search", "ads", "social", "messenger", "email", "referral", "direct", "internal")


# ------------------------------------------------------------------ fuzzing

_words = st.sampled_from(
    ["yandex", "google", "vk", "mail", "ru", "com", "co", "uk", "www", "", ".", "..", ":", "/",
     "xn--", "\x00", "\ud800", " ", "Я", "cpc", "e-mail", "organic", "t.me", "example", "[::1]"]
)
host_like = st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=40),
                      st.lists(_words, max_size=8).map("".join), st.integers())
_keys = st.sampled_from(["utm_source", "utm_medium", "gclid", "yclid", "fbclid", "ysclid", "x", ""])
_values = st.one_of(st.text(max_size=30), st.lists(_words, max_size=5).map("".join), st.none(),
                    st.integers())
query_like = st.one_of(
    st.dictionaries(st.one_of(_keys, st.text(max_size=10)), _values, max_size=6),
    st.none(), st.text(max_size=10), st.lists(st.text(max_size=5), max_size=3),
)


def _check(result):
    assert isinstance(result, tuple) and len(result) == 2
    source, kind = result
    assert kind in TRAFFIC_TYPES
    assert source is None or isinstance(source, str)
    if kind in ("direct", "internal"):
        assert source is None


@settings(max_examples=1500, deadline=None)
@given(host_like, query_like, host_like)
def test_fuzz_classify_never_raises(landing, query, referrer):
    _check(CAT.classify(landing, query, referrer))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)),
       st.one_of(st.none(), st.text(max_size=100), st.binary(max_size=100)))
def test_fuzz_visit_pipeline(url, referrer):
    host, path, query = split_url(url)
    _check(CAT.classify(host, query, host_of(referrer)))


_override_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
              st.sampled_from(TRAFFIC_TYPES), st.sampled_from(["partner.ru", "ru", "*.a.ru", "vk"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["type", "hosts", "aliases", "source", "x"]),
                                            inner, max_size=3)),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(
    st.one_of(st.sampled_from(["partner", "vk", "$mediums", "$paid_mediums", "$click_ids", "$x"]),
              st.text(max_size=8)),
    _override_values, max_size=4))
def test_fuzz_overrides_fail_only_with_config_error(overrides):
    try:
        cat = SourceCatalogue(overrides)
    except ConfigError as err:
        assert err.problems and all(isinstance(p, str) and isinstance(m, str) for p, m in err.problems)
        return
    _check(cat.classify(SITE, {"utm_source": "partner"}, "partner.ru"))
