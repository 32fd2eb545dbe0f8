/*! k50core tracking snippet, plain JS, MIT. <script src=".../snippet.js" async data-endpoint="https://track.example"
 * data-site-number="+74951234567" (or data-numbers="a,b") data-region="RU" data-heartbeat="30"> Swaps the site's
 * numbers, any country's (national forms read in data-region's), in text, also split across inline elements, and
 * tel: links (not inside [data-k50-noswap]); a [data-k50-phone] element shows the number in its written format.
 * A tap or click on the swapped number (or its tel: link) and a copy of its text are reported at once with
 * navigator.sendBeacon (POST /v1/intent): attribution uses them to tell apart the visitors of a shared number.
 * API: K50.rescan(), K50.number(), K50.display(), K50.version. */
(function (w, d) {
  "use strict";
  if (w.K50 && w.K50.version) return;
  var VERSION = "1.2.0", COOKIE = "k50_vid", NOSWAP = "[data-k50-noswap]", MARK = "[data-k50-phone]";
  var SKIP = { SCRIPT: 1, STYLE: 1, NOSCRIPT: 1, TEXTAREA: 1, INPUT: 1, SELECT: 1, OPTION: 1, TEMPLATE: 1 };
  var INLINE = /^(A|ABBR|B|BDI|BDO|CITE|CODE|DATA|DFN|EM|FONT|I|KBD|MARK|NOBR|Q|S|SAMP|SMALL|SPAN|STRONG|SUB|SUP|TIME|U|VAR)$/;
  var RUN = /\+?\d[\d\s\u00a0().\/\u2010-\u2015-]*\d/g; // a digit run written with the usual separators
  // two-digit country codes; 1 and 7 have one digit, the rest three (calling codes are prefix-free)
  var CC2 = " 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98 ";
  var TRUNK = { 1: ["1"], 7: ["8"], 375: ["80", "0"] }; // national prefixes where not "0"
  var REGION = { RU: "7", KZ: "7", US: "1", CA: "1", GB: "44", UK: "44", DE: "49", FR: "33", BY: "375", UA: "380" };
  var script = d.currentScript || d.querySelector("script[src*='snippet.js']");
  function attr(n) { var v = script && script.getAttribute(n); return v ? v.trim() : ""; }
  var endpoint = (attr("data-endpoint") || (script && script.src ? new URL(script.src, location.href).origin : "")).replace(/\/+$/, "");
  var beat = parseFloat(attr("data-heartbeat")) || 30;
  var home = REGION[(attr("data-region") || "RU").toUpperCase()] || attr("data-region").replace(/\D/g, "") || "7";
  var targets = {}, current = null, display = null, token = null, vid = null, observer = null, timer = null;

  function ccOf(e) { return e[0] === "1" || e[0] === "7" ? e[0] : e.slice(0, CC2.indexOf(" " + e.slice(0, 2) + " ") >= 0 ? 2 : 3); }
  function trunks(cc) { return TRUNK[cc] || ["0"]; }
  // a written number -> its international digits: "+1 (415) 555-0100" -> "14155550100", "8 495 123-45-67" -> "74951234567"
  function e164(text) {
    var t = String(text).trim(), s = t.replace(/\D/g, ""), tr = trunks(home), i;
    if (s.length < 7 || s.length > 15) return null;
    if (t[0] === "+") return s;
    if (s.slice(0, 2) === "00") return s.slice(2);
    for (i = 0; i < tr.length; i++) if (s.indexOf(tr[i]) === 0) return home + s.slice(tr[i].length);
    return s.length >= 11 && s.indexOf(home) === 0 ? s : home + s;
  }
  (attr("data-numbers") || attr("data-site-number")).split(/[,;]/).forEach(function (n) {
    n = e164(n); if (n) targets[n] = 1;
  });
  // the digits a number may be written with: [digits, how many lead digits stay as written, the number]
  function variants(t) {
    var cc = ccOf(t), n = t.slice(cc.length), tr = trunks(cc), out = [[t, cc.length, t], [n, 0, t]];
    tr.forEach(function (p) { out.push([p + n, p.length, t]); });
    if (tr.indexOf("0") >= 0) out.push([cc + "0" + n, cc.length + 1, t]); // +44 (0)20 ...
    return out;
  }
  function forms() { // every site number's, longest first
    var out = [];
    for (var t in targets) if (t !== current) out = out.concat(variants(t));
    return out.sort(function (a, b) { return b[0].length - a[0].length; });
  }

  function cookie(name) {
    var m = d.cookie.match(new RegExp("(?:^|;\\s*)" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function setCookie(value) {
    d.cookie = COOKIE + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; samesite=lax" +
      (location.protocol === "https:" ? "; secure" : "");
  }
  function randomId() {
    return [].map.call(w.crypto.getRandomValues(new Uint8Array(16)), function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function gaClientId() { var m = (cookie("_ga") || "").match(/\d+\.\d+$/); return m && m[0]; } // GA1.1.<id>.<time>
  function gaSessionId() { var m = d.cookie.match(/(?:^|; )_ga_\w+=GS\d\.\d+\.s?(\d+)/); return m && m[1]; } // GS1.1.<sid>. / GS2.1.s<sid>$

  // Edits [start, end, text] writing the current number over digits at positions pos (lead digits kept):
  // same country: digit for digit, the last group taking any difference in length; else the display form.
  function fill(text, pos, lead, was, edits) {
    var cc = ccOf(current), n = current.slice(cc.length), m = pos.length - lead, j, a = pos[0];
    if (ccOf(was) !== cc) { edits.push([text[a - 1] === "+" ? a - 1 : a, pos[pos.length - 1] + 1, display || "+" + current]); return; }
    for (j = 0; j < m; j++) edits.push([pos[lead + j], pos[lead + j] + 1, j < m - 1 ? n[j] || "" : n.slice(m - 1)]);
  }

  // Text nodes that read as one line: neighbours under the same block (inline elements between them).
  function block(n) {
    for (var e = n.parentNode; e && e.nodeType === 1 && INLINE.test(e.nodeName); e = e.parentNode) { /* up */ }
    return e;
  }
  function off(el) { // inside a script, a form field, a no-swap or a marked element
    for (var e = el; e && e.nodeType === 1; e = e.parentNode) if (SKIP[e.nodeName]) return true;
    return !!(el && el.closest && (el.closest(NOSWAP) || el.closest(MARK)));
  }
  function group(nodes) {
    var g = { nodes: nodes, at: {}, text: "" };
    nodes.forEach(function (n) { g.at[g.text.length] = 1; g.text += n.data; });
    return g;
  }
  function apply(g, edits) { // edits in the group's text -> node data; the count of nodes changed
    var starts = [], out = [], i, j, s = 0, count = 0;
    g.nodes.forEach(function (n) { starts.push(s); out.push(n.data); s += n.data.length; });
    edits.sort(function (a, b) { return b[0] - a[0]; });
    for (i = 0; i < edits.length; i++) {
      var e = edits[i], put = false;
      for (j = 0; j < out.length; j++) {
        var a = Math.max(e[0], starts[j]) - starts[j], b = Math.min(e[1], starts[j] + g.nodes[j].data.length) - starts[j];
        if (b <= a) continue;
        out[j] = out[j].slice(0, a) + (put ? "" : e[2]) + out[j].slice(b); put = true;
      }
    }
    for (j = 0; j < out.length; j++) if (out[j] !== g.nodes[j].data) { g.nodes[j].data = out[j]; count++; }
    return count;
  }
  function digits(g, from, to) {
    var pos = [], ds = "", i;
    for (i = from; i < to; i++) if (g.text[i] >= "0" && g.text[i] <= "9") { pos.push(i); ds += g.text[i]; }
    return { pos: pos, ds: ds };
  }
  function swapGroup(g, all) { // the site's numbers in the group's text
    var edits = [], m, i, k, f, L;
    RUN.lastIndex = 0;
    while ((m = RUN.exec(g.text))) {
      var r = digits(g, m.index, m.index + m[0].length), pos = r.pos, ds = r.ds;
      var joined = function (x) { return pos[x] === pos[x - 1] + 1 && !g.at[pos[x]]; };
      for (i = 0; i < pos.length; i++) {
        if (i && joined(i)) continue; // a number starts after a separator...
        for (k = 0; k < all.length; k++) {
          f = all[k]; L = f[0].length;
          if (ds.substr(i, L) !== f[0] || (i + L < pos.length && joined(i + L))) continue; // ...and ends before one
          fill(g.text, pos.slice(i, i + L), f[1], f[2], edits); i += L - 1; break;
        }
      }
    }
    return edits.length ? apply(g, edits) : 0;
  }
  function mark(el) { // a marked element: its whole text becomes the number, in its written format
    var walk = d.createTreeWalker(el, 4, null), nodes = [], n;
    while ((n = walk.nextNode())) nodes.push(n);
    var g = group(nodes), r = digits(g, 0, g.text.length), was = e164(g.text) || current, edits = [], lead = 0;
    if (!r.pos.length) return el.textContent === display ? 0 : (el.textContent = display, 1);
    variants(was).forEach(function (f) { if (f[0] === r.ds) lead = f[1]; });
    fill(g.text, r.pos, lead, was, edits);
    return apply(g, edits);
  }

  function scan(root) {
    if (!current || !root) return 0;
    var count = 0, all = forms(), i, run = [], b = null, node;
    if (root.nodeType === 3 || INLINE.test(root.nodeName)) root = block(root); // a number may go on beside it
    if (!root || (root.nodeType !== 1 && root.nodeType !== 9)) return 0;
    var walk = d.createTreeWalker(root, 4, null);
    var flush = function () { if (run.length) count += swapGroup(group(run), all); run = []; };
    while ((node = walk.nextNode())) {
      if (!/\S/.test(node.data) && !run.length) continue;
      if (off(node.parentNode)) { flush(); continue; }
      if (block(node) !== b) { flush(); b = block(node); }
      run.push(node);
    }
    flush();
    var links = [].slice.call(root.querySelectorAll("a[href^='tel:' i]")), marks = [].slice.call(root.querySelectorAll(MARK));
    if (root.matches && root.matches("a[href^='tel:' i]")) links.push(root);
    if (root.closest && root.closest(MARK)) marks.push(root.closest(MARK)); // (itself included)
    for (i = 0; i < marks.length; i++) if (!marks[i].closest(NOSWAP)) count += mark(marks[i]);
    for (i = 0; i < links.length; i++) {
      var n = e164(links[i].getAttribute("href").slice(4).replace(/%[\da-f]{2}/gi, "").split(/[;,?]/)[0]);
      if (n && n !== current && (targets[n] && !off(links[i]) || links[i].closest(MARK) && !links[i].closest(NOSWAP))) {
        links[i].setAttribute("href", "tel:+" + current); count++;
      }
    }
    return count;
  }

  function observe() {
    if (observer || !w.MutationObserver) return;
    observer = new MutationObserver(function (records) {
      for (var i = 0; i < records.length; i++) {
        var r = records[i];
        if (r.type === "childList") for (var j = 0; j < r.addedNodes.length; j++) scan(r.addedNodes[j]);
        else scan(r.target);
      }
    });
    observer.observe(d.documentElement, { childList: true, subtree: true, characterData: true,
      attributes: true, attributeFilter: ["href"] });
  }

  function post(path, body) {
    return fetch(endpoint + path, { method: "POST", credentials: "include", keepalive: true,
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { if (!r.ok) throw new Error("k50: " + path + " " + r.status); return r.json(); });
  }

  function store(v) { try { return v === undefined ? sessionStorage.getItem("k50_token") : sessionStorage.setItem("k50_token", v || ""); } catch (e) { return null; } }

  function visit() {
    vid = cookie(COOKIE) || vid || randomId();
    setCookie(vid);
    var body = { url: location.href, referrer: d.referrer || undefined, visitor_id: vid, ga_client_id: gaClientId() || undefined,
      ga_session_id: gaSessionId() || undefined };
    body.token = store() || undefined;
    return post("/v1/visit", body).then(function (got) { // a new visitor's first answer: a claim ticket, no number
      if (!got.claim) return got;
      body.claim = got.claim; body.visitor_id = got.visitor_id || vid;
      return post("/v1/visit", body); // the same visit with the ticket: now the number
    }).then(function (got) {
      vid = got.visitor_id || vid; setCookie(vid);
      token = got.token; store(token);
      var n = got.number ? e164(got.number) : null;
      if (current && n !== current) targets[current] = 1; // a new number replaces the previous one too
      current = n; display = n ? got.display : null;
      if (current) { scan(d.body); observe(); }
      return got;
    });
  }

  function heartbeat() {
    if (!token || d.visibilityState === "hidden") return;
    post("/v1/heartbeat", { token: token }).then(function (r) {
      if (!r.alive) { token = null; store(""); visit(); } // the lease ended: ask again
    }).catch(function () { /* the next beat retries */ });
  }

  // A tap on or copy of the number, sent as the page hands over to the dialer: by beacon (text/plain: a
  // beacon cannot send JSON cross-site); the same kind again within 2 s (a double tap) is not sent.
  var sent = {};
  function intent(kind) {
    var now = Date.now(), url = endpoint + "/v1/intent", body;
    if (!token || now - (sent[kind] || 0) < 2000) return false;
    sent[kind] = now; body = JSON.stringify({ token: token, kind: kind, visitor_id: vid });
    try { if (navigator.sendBeacon(url, body)) return true; } catch (e) { /* fetch then */ }
    fetch(url, { method: "POST", body: body, keepalive: true, credentials: "include" }).catch(function () {});
    return true;
  }
  function shows(t) { return !!current && String(t || "").replace(/\D/g, "").indexOf(current.slice(ccOf(current).length)) >= 0; }
  function tapped(ev) {
    var el = ev.target, a = el && el.closest && !el.closest(NOSWAP) && el.closest("a[href^='tel:' i]");
    if (a ? shows(a.href) : el && el.closest && (el.closest(MARK) || el.textContent.length < 64 && shows(el.textContent))) intent("click");
  }
  function copied() { if (shows(w.getSelection())) intent("copy"); }

  function start() {
    K50.ready = visit();
    K50.ready.catch(function (e) { if (w.console) console.warn(e); });
    timer = setInterval(heartbeat, beat * 1000);
    d.addEventListener("visibilitychange", heartbeat);
    d.addEventListener("click", tapped, true);
    d.addEventListener("copy", copied, true);
  }

  var K50 = w.K50 = {
    version: VERSION,
    rescan: function () { return d.body ? scan(d.body) : 0; },
    number: function () { return current ? "+" + current : null; },
    display: function () { return display; },
    visitorId: function () { return vid; },
    intent: intent,
    stop: function () {
      clearInterval(timer); if (observer) observer.disconnect(); observer = null;
      d.removeEventListener("click", tapped, true); d.removeEventListener("copy", copied, true);
    }
  };
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start); else start();
})(window, document);
