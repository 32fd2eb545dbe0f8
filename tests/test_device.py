"""device_type / device_types / device_info, in both builds, against user_agents.

The oracle is ``user_agents.parse`` itself (with the shared rules: non-str is
"", cut at 4096 code points, a raise answers as ""). The compiled build runs
ua-parser's regexes behind a literal prefilter, so besides end-to-end equality
on a corpus this checks the prefilter directly: it must accept every string a
regex can match (strings drawn from each regex by Hypothesis and by a small
sampler here).
"""
from __future__ import annotations

import importlib
import os
import random
import re
from collections.abc import Callable
from functools import cache
from types import ModuleType

import pytest
import user_agents
from hypothesis import HealthCheck, given, settings, strategies as st

from k50core import _impl

try:
    from re import _constants as C, _parser  # Python >= 3.11
except ImportError:  # Python 3.10
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

CAP = 4096
BUILDS = _impl.available()
CORPUS_SCALE = int(os.environ.get("K50CORE_DEVICE_CORPUS_SCALE", "1"))


@pytest.fixture(params=["reference", "compiled"])
def core(request: pytest.FixtureRequest) -> ModuleType:
    if request.param not in BUILDS:
        if os.environ.get("K50CORE_NO_EXTENSIONS"):
            pytest.skip("compiled build disabled by K50CORE_NO_EXTENSIONS")
        pytest.fail("compiled build missing: run `python setup.py build_ext --inplace`")
    return BUILDS[request.param]


@pytest.fixture(scope="module")
def compiled() -> ModuleType:
    if "compiled" not in BUILDS:
        if os.environ.get("K50CORE_NO_EXTENSIONS"):
            pytest.skip("compiled build disabled by K50CORE_NO_EXTENSIONS")
        pytest.fail("compiled build missing: run `python setup.py build_ext --inplace`")
    return BUILDS["compiled"]


def oracle(ua: object) -> tuple[str, str, str]:
    """What user_agents says, under the rules both builds share."""
    return _oracle(str.__str__(ua)[:CAP] if isinstance(ua, str) else "")


@cache
def _oracle(text: str) -> tuple[str, str, str]:
    try:
        u = user_agents.parse(text)
    except Exception:
        return _oracle("") if text else ("other", "Other", "Other")
    for kind, flag in (("bot", u.is_bot), ("tablet", u.is_tablet), ("mobile", u.is_mobile), ("desktop", u.is_pc)):
        if flag:
            return (kind, u.os.family, u.browser.family)
    return ("other", u.os.family, u.browser.family)


# ---- corpus -----------------------------------------------------------------

REAL = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; KFTT Build/IML74K) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Safari/534.30 Silk/3.4",
    "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
    "Mozilla/5.0 (Android 13; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 OPR/79.0.4195.76592",
    "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (J2ME/22.478; U; en) Presto/2.5.25 Version/10.54",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; ARM; Trident/6.0; Touch)",
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows Phone OS 7.5; Trident/5.0; IEMobile/9.0; NOKIA; Lumia 800)",
    "Mozilla/5.0 (BlackBerry; U; BlackBerry 9900; en) AppleWebKit/534.11+ (KHTML, like Gecko) Version/7.1.0.346 Mobile Safari/534.11+",
    "Mozilla/5.0 (PlayBook; U; RIM Tablet OS 2.1.0; en-US) AppleWebKit/536.2+ (KHTML, like Gecko) Version/7.2.1.0 Safari/536.2+",
    "Mozilla/5.0 (SymbianOS/9.4; Series60/5.0 NokiaN97-1/12.0.024; Profile/MIDP-2.1 Configuration/CLDC-1.1; en-us) AppleWebKit/525 (KHTML, like Gecko) BrowserNG/7.1.12344",
    "Mozilla/5.0 (Mobile; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
    "curl/8.4.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Python-urllib/3.11",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "Java/17.0.2",
    "PostmanRuntime/7.36.0",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (PlayStation 4 11.00) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041",
    "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
    "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
    "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Roku/DVP-9.10 (519.10E04111A)",
    "AppleTV11,1/11.1",
    "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/92.0.4515.159 Safari/537.36 CrKey/1.56.500000",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)",
    "Mozilla/5.0 (X11; Linux x86_64; rv:102.0) Gecko/20100101 Thunderbird/102.6.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.5.10",
    "Mozilla/5.0 (Linux; U; Android 9; en-US; SM-J730F Build/PPR1.180610.011) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 309.0.0.28.113 (iPhone14,5; iOS 16_6; en_US; en; scale=3.00; 1170x2532; 536155440)",
    "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.43 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/444.0.0.33.117;]",
    "WhatsApp/2.23.24.82 A",
    "Dalvik/2.1.0 (Linux; U; Android 11; SM-A125F Build/RP1A.200720.012)",
    "MobileSafari/8616.2.9.10.4 CFNetwork/1410.0.3 Darwin/22.6.0",
    "Mozilla/4.0 (compatible; MSIE 6.0; Windows 98)",
    "Mozilla/4.0 (compatible; MSIE 5.5; Windows ME)",
    "Mozilla/5.0 (Maemo; Linux armv7l; rv:10.0.1) Gecko/20100101 Firefox/10.0.1 Fennec/10.0.1",
    "Mozilla/5.0 (Mobile; LYF/F300B/LYF-F300B-001-01-15-130718-i;Android; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5",
    "ArcGIS Pro 1.2.\u00b2",  # user_agents raises (int('²')): answered as ""
    "",
    " ",
    "-",
    "Mozilla/5.0",
    "\x00\x01\x02",
    "\ud800\udfff lone surrogates \udc80",
    "Mozilla/5.0 (\u0130Pad; CPU OS 17_2 like Mac OS X) \u212a\u017f Safari",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8\n) Chrome/120.0.0.0 Mobile Safari/537.36\n",
    "\\d\\1 $1 \\g<0> Chrome\\/1",
]

PLATFORMS = [
    "Windows NT 10.0; Win64; x64", "Windows NT 6.1; WOW64", "Windows NT 5.1", "Windows NT 6.3; ARM; Touch",
    "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64", "X11; Ubuntu; Linux i686", "X11; CrOS aarch64 15359.58.0",
    "iPhone; CPU iPhone OS 16_6 like Mac OS X", "iPad; CPU OS 15_7 like Mac OS X", "iPod touch; CPU iPhone OS 12_5 like Mac OS X",
    "Linux; Android 14; Pixel 8 Pro", "Linux; Android 12; SM-T870", "Linux; Android 11; Redmi Note 9 Pro",
    "Linux; Android 10; HUAWEI MatePad", "Linux; U; Android 4.4.2; en-us; GT-I9505 Build/KOT49H",
    "Linux; Android 9; KFTRWI", "Linux; Android 13; moto g power (2022)", "Linux; Android 8.1.0; Nexus 7",
    "Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950", "Mobile; rv:48.0", "Tablet; rv:68.0",
    "PlayStation Vita 3.74", "BB10; Touch", "SMART-TV; Linux; Tizen 5.5", "compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0",
]
ENGINES = [
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.0 Mobile/15E148 Safari/604.1",
    "AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/{v}.0.0.0 Mobile/15E148 Safari/604.1",
    "Gecko/20100101 Firefox/{v}.0",
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36 OPR/{v}.0.0",
    "AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/{v}.0 Chrome/110.0.0.0 Mobile Safari/537.36",
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{v}.0.0.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/1.0;]",
    "like Gecko",
]


def _sample(items: list, rng: random.Random, out: list[str]) -> None:
    """Appends a string drawn from an sre parse tree (usually a match)."""
    for op, av in items:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.NOT_LITERAL:
            out.append("x" if av != ord("x") else "y")
        elif op is C.ANY:
            out.append(rng.choice("aZ0 ;/._-("))
        elif op is C.IN:
            out.append(_class_char(av, rng))
        elif op is C.BRANCH:
            _sample(rng.choice(av[1]), rng, out)
        elif op is C.SUBPATTERN:
            _sample(av[3], rng, out)
        elif op is getattr(C, "ATOMIC_GROUP", None):
            _sample(av, rng, out)
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            for _ in range(rng.randint(lo, min(hi, lo + 3))):
                _sample(sub, rng, out)


def _class_char(items: list, rng: random.Random) -> str:
    if items and items[0][0] is C.NEGATE:
        pool = [c for c in "aAzZ09 ;/._-()+:,xX\u00e9" if not _in_class(items, c)]
        return rng.choice(pool or ["\u00e9"])
    op, av = rng.choice(items)
    if op is C.LITERAL:
        return chr(av)
    if op is C.RANGE:
        return chr(rng.randint(av[0], av[1]))
    return {C.CATEGORY_DIGIT: "7", C.CATEGORY_SPACE: " ", C.CATEGORY_WORD: "w"}.get(av, "a")


def _in_class(items: list, c: str) -> bool:
    cats = {C.CATEGORY_DIGIT: r"\d", C.CATEGORY_SPACE: r"\s", C.CATEGORY_WORD: r"\w"}
    for op, av in items:
        if op is C.LITERAL and av == ord(c):
            return True
        if op is C.RANGE and av[0] <= ord(c) <= av[1]:
            return True
        if op is C.CATEGORY and av in cats and re.fullmatch(cats[av], c):
            return True
    return False


def _legacy_patterns() -> list[re.Pattern]:
    from ua_parser import user_agent_parser as uap

    return [p.user_agent_re for p in uap.USER_AGENT_PARSERS + uap.OS_PARSERS + uap.DEVICE_PARSERS]


def regex_samples(rng: random.Random, per_regex: int) -> list[tuple[int, str]]:
    """(parser index, string) with strings drawn from every ua-parser regex."""
    out = []
    for i, pat in enumerate(_legacy_patterns()):
        tree = _parser.parse(pat.pattern, pat.flags)
        for _ in range(per_regex):
            parts: list[str] = []
            _sample(list(tree), rng, parts)
            out.append((i, "".join(parts)))
    return out


def build_corpus(scale: int = 1) -> list[str]:
    rng = random.Random(20240501)
    corpus = list(REAL)
    for _ in range(600 * scale):
        v = rng.randint(4, 130)
        corpus.append(f"Mozilla/5.0 ({rng.choice(PLATFORMS)}) {rng.choice(ENGINES).format(v=v)}")
    wrappers = ["{}", "Mozilla/5.0 (Linux; Android 12; {}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
                "Mozilla/5.0 ({}) Gecko/20100101 Firefox/120.0", "{} CFNetwork/1410.0.3 Darwin/22.6.0"]
    for _, text in regex_samples(rng, scale):
        corpus.append(rng.choice(wrappers).format(text))
    for base in rng.sample(corpus, min(len(corpus), 400 * scale)):  # mutants
        cut = rng.randint(0, len(base))
        corpus.append(rng.choice([base[:cut], base.swapcase(), base.replace(" ", "", 1), base[cut:] + base[:cut], base + " Mobile"]))
    return corpus


CORPUS = build_corpus(CORPUS_SCALE)


# ---- tests ----------------------------------------------------------------

IPHONE, IPAD, WIN_CHROME, MAC_SAFARI = REAL[0], REAL[1], REAL[2], REAL[5]
KNOWN = {
    IPHONE: "mobile",
    IPAD: "tablet",
    WIN_CHROME: "desktop",
    MAC_SAFARI: "desktop",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "bot",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36": "mobile",
    # an Android tablet: no "Mobile" in the UA
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36": "tablet",
}


@pytest.mark.parametrize("ua,kind", sorted(KNOWN.items()))
def test_known_user_agents(core: ModuleType, ua: str, kind: str) -> None:
    assert core.device_type(ua) == kind
    assert core.device_info(ua)[0] == kind


def test_tools_answer_as_user_agents_does(core: ModuleType) -> None:
    for ua in ("curl/8.4.0", "python-requests/2.31.0", "Wget/1.21.4", "Go-http-client/2.0"):
        assert core.device_info(ua) == oracle(ua)
    assert core.device_info("curl/8.4.0") == ("other", "Other", "curl")


def test_corpus_equals_user_agents(core: ModuleType) -> None:
    got = core.device_types(CORPUS)
    infos = [core.device_info(ua) for ua in CORPUS]
    bad = [(ua, info, oracle(ua)) for ua, info in zip(CORPUS, infos) if info != oracle(ua)]
    assert not bad[:5], f"{len(bad)} of {len(CORPUS)} differ"
    assert got == [info[0] for info in infos]


def test_corpus_is_diverse() -> None:
    kinds = {oracle(ua)[0] for ua in CORPUS}
    assert kinds == {"bot", "tablet", "mobile", "desktop", "other"}
    assert len(CORPUS) >= 2000


def test_builds_agree_on_corpus(compiled: ModuleType) -> None:
    ref = BUILDS["reference"]
    assert compiled.device_types(CORPUS) == ref.device_types(CORPUS)


def test_user_agents_raising_answers_as_empty(core: ModuleType) -> None:
    ua = "ArcGIS Pro 1.2.\u00b2"
    with pytest.raises(ValueError):
        user_agents.parse(ua)
    assert core.device_info(ua) == core.device_info("") == oracle("")


BAD_INPUTS = [None, b"Mozilla/5.0 (iPhone)", 123, 1.5, object(), [], {}, ("a",), bytearray(b"x")]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=repr)
def test_bad_input_answers_as_empty(core: ModuleType, bad: object) -> None:
    assert core.device_type(bad) == core.device_type("")
    assert core.device_info(bad) == core.device_info("") == oracle("")
    assert core.device_types([bad, IPHONE, bad]) == [oracle("")[0], "mobile", oracle("")[0]]


def test_odd_strings(core: ModuleType) -> None:
    class Sub(str):
        def __getitem__(self, k):  # must not be consulted
            raise RuntimeError

        def __hash__(self):
            return 1

    long_ua = IPHONE + " " + "x" * 10_000
    for ua in (Sub(IPAD), long_ua, "a" * 100_000, "\ud800" * 5000, "\x00" * 10, "\U0010ffff" * 3):
        assert core.device_info(ua) == oracle(ua)
    assert core.device_type(long_ua) == oracle(long_ua[:CAP])[0] == "mobile"
    assert core.device_type(Sub(IPAD)) == "tablet"


def test_repeated_and_equal_strings(core: ModuleType) -> None:
    a, b = IPHONE, "".join(list(IPHONE))  # equal text, another object
    assert a is not b
    for ua in (a, a, b, IPAD, a, b, IPAD):
        assert core.device_type(ua) == oracle(ua)[0]
    assert core.device_types([a] * 5 + [IPAD] * 3 + [b]) == ["mobile"] * 5 + ["tablet"] * 3 + ["mobile"]
    assert core.device_types(ua for ua in [a, WIN_CHROME]) == ["mobile", "desktop"]


def test_cache_bound(core: ModuleType) -> None:
    # the reference keeps its cache helpers in its device module
    cache = core if hasattr(core, "_device_cache_info") else importlib.import_module(core.__name__ + ".device")
    assert cache._device_cache_info()["maxsize"] == 100_000
    cache._device_cache_configure(16)
    try:
        for i in range(60):
            ua = f"{REAL[i % 10]} k50/{i}"
            assert core.device_type(ua) == oracle(ua)[0]
            assert cache._device_cache_info()["size"] <= 16
        assert core.device_types([f"{WIN_CHROME} batch/{i}" for i in range(40)]) == ["desktop"] * 40
        assert cache._device_cache_info()["size"] <= 16
    finally:
        cache._device_cache_configure()
    assert cache._device_cache_info() == {"size": 0, "maxsize": 100_000}


FRAGMENTS = ["Mozilla/5.0 ", "(", ")", "; ", "Linux", "Android 13", "iPhone", "iPad", "CPU OS 17_2 like Mac OS X",
             "Windows NT 10.0", "Win64; x64", "Macintosh", "X11", "Chrome/120.0", "Mobile", "Safari/537.36",
             "Firefox/121.0", "Gecko", "bot", "Googlebot/2.1", "spider", "crawl", "Build/", "SM-T", "Kindle",
             "Silk", "Tablet", "Touch", "ARM", "Opera Mini", "MIDP", "BlackBerry", "PlayBook", "Maemo",
             "Windows Phone", "CrOS", "Edg/", "OPR/", "curl/", "Trident/7.0", "rv:", "/", ".", "1", "9", " "]
UA_LIKE = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=14).map("".join)
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=60)  # surrogates too


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ua=st.one_of(UA_LIKE, ANY_TEXT))
def test_random_text_matches_user_agents(ua: str) -> None:
    expected = oracle(ua)
    for build in BUILDS.values():
        assert build.device_info(ua) == expected
        assert build.device_types([ua]) == [expected[0]]


# ---- the compiled prefilter is sound: it never skips a regex that matches ---

def test_prefilter_accepts_sampled_matches(compiled: ModuleType) -> None:
    engine = compiled._device_engine()
    pats = _legacy_patterns()
    checked = 0
    for i, text in regex_samples(random.Random(7), 4):
        for s in (text, "Mozilla/5.0 (" + text + ") x", text.lower(), text.upper()):
            if pats[i].search(s):
                checked += 1
                assert engine.filter.accepts(i, s), (i, pats[i].pattern, s)
    assert checked > len(pats) * 4  # most samples do match


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_prefilter_accepts_hypothesis_matches(compiled: ModuleType, data: st.DataObject) -> None:
    pats = _legacy_patterns()
    i = data.draw(st.integers(0, len(pats) - 1))
    s = data.draw(st.from_regex(pats[i]))
    assert pats[i].search(s)
    assert compiled._device_engine().filter.accepts(i, s), (i, pats[i].pattern, s)


def _fake_useragent(mod: ModuleType) -> list[str]:
    import json

    path = os.path.join(os.path.dirname(mod.__file__), "data", "browsers.jsonl")
    with open(path, encoding="utf-8") as fh:
        return sorted({json.loads(line)["useragent"] for line in fh})


def _crawler_user_agents(mod: ModuleType) -> list[str]:
    import json

    with open(os.path.join(os.path.dirname(mod.__file__), "crawler-user-agents.json"), encoding="utf-8") as fh:
        return sorted({ua for entry in json.load(fh) for ua in entry.get("instances", [])})


@pytest.mark.parametrize("module,load", [("fake_useragent", _fake_useragent), ("crawleruseragents", _crawler_user_agents)])
def test_real_world_corpora_if_installed(compiled: ModuleType, module: str, load: Callable[[ModuleType], list[str]]) -> None:
    """Thousands of real UAs shipped by optional packages (test extras)."""
    uas = load(pytest.importorskip(module))
    bad = [(ua, info) for ua, info in zip(uas, map(compiled.device_info, uas)) if info != oracle(ua)]
    assert not bad[:5], f"{len(bad)} of {len(uas)} differ"
