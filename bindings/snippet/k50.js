/*! k50core tracking snippet, plain JS, MIT. <script src=".../snippet.js" async data-endpoint="https://track.example"
 * data-site-number="+74951234567" (or data-numbers="a,b") data-heartbeat="30"> Swaps the site's numbers in text
 * and tel: links (not inside [data-k50-noswap]). API: K50.rescan(), K50.number(), K50.display(), K50.version. */
(function (w, d) {
  "use strict";
  if (w.K50 && w.K50.version) return;
  var VERSION = "1.0.0", COOKIE = "k50_vid", NOSWAP = "[data-k50-noswap]";
  var SKIP = { SCRIPT: 1, STYLE: 1, NOSCRIPT: 1, TEXTAREA: 1, INPUT: 1, SELECT: 1, OPTION: 1, TEMPLATE: 1 };
  var RUN = /\+?\d[\d\s\u00a0().\u2010-\u2015-]*\d/g; // a digit run written with the usual separators
  var script = d.currentScript || d.querySelector("script[src*='snippet.js']");
  function attr(n) { var v = script && script.getAttribute(n); return v ? v.trim() : ""; }
  var endpoint = (attr("data-endpoint") || (script && script.src ? new URL(script.src, location.href).origin : "")).replace(/\/+$/, "");
  var beat = parseFloat(attr("data-heartbeat")) || 30;
  var targets = {}, current = null, display = null, token = null, vid = null, observer = null, timer = null;

  // "+7 (495) 123-45-67", "8 495 1234567", "4951234567" -> "74951234567"; anything else -> null
  function norm(text) {
    var s = String(text).replace(/\D/g, "");
    if (s.length === 11 && (s[0] === "8" || s[0] === "7")) return "7" + s.slice(1);
    return s.length === 10 ? "7" + s : null;
  }
  (attr("data-numbers") || attr("data-site-number")).split(/[,;]/).forEach(function (n) {
    n = norm(n); if (n) targets[n] = 1;
  });

  function cookie(name) {
    var m = d.cookie.match(new RegExp("(?:^|;\\s*)" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function setCookie(value) {
    d.cookie = COOKIE + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; samesite=lax" +
      (location.protocol === "https:" ? "; secure" : "");
  }
  function randomId() {
    return Array.prototype.map.call(w.crypto.getRandomValues(new Uint8Array(16)), function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function gaClientId() { var m = (cookie("_ga") || "").match(/\d+\.\d+$/); return m && m[0]; } // GA1.1.<id>.<time>
  function gaSessionId() { var m = d.cookie.match(/(?:^|; )_ga_\w+=GS\d\.\d+\.s?(\d+)/); return m && m[1]; } // GS1.1.<sid>. / GS2.1.s<sid>$

  // Replaces the target digits inside one string, keeping its written form; null when nothing changed.
  function swap(text) {
    if (!current) return null;
    var changed = false;
    var out = text.replace(RUN, function (run) {
      var pos = [], i, j, k;
      for (i = 0; i < run.length; i++) if (run[i] >= "0" && run[i] <= "9") pos.push(i);
      var chars = run.split("");
      for (i = 0; i < pos.length; i++) {
        for (k = 11; k >= 10; k--) {
          if (i + k > pos.length) continue;
          var digits = "";
          for (j = 0; j < k; j++) digits += run[pos[i + j]];
          var n = norm(digits);
          if (!n || !targets[n] || n === current) continue;
          var repl = k === 11 ? digits[0] + current.slice(1) : current.slice(1); // keep a leading 8 or 7
          for (j = 0; j < k; j++) chars[pos[i + j]] = repl[j];
          changed = true; i += k - 1; break;
        }
      }
      return chars.join("");
    });
    return changed ? out : null;
  }

  function off(el) { // inside a script, a form field or a no-swap element
    for (var e = el; e && e.nodeType === 1; e = e.parentNode) if (SKIP[e.nodeName]) return true;
    return !!(el && el.closest && el.closest(NOSWAP));
  }

  function scan(root) {
    if (!current || !root) return 0;
    var count = 0, node, links = [], i, s, texts = [];
    if (root.nodeType === 3) texts.push(root);
    else if (root.nodeType === 1 || root.nodeType === 9) {
      var walk = d.createTreeWalker(root, 4, null);
      while ((node = walk.nextNode())) texts.push(node);
      links = Array.prototype.slice.call(root.querySelectorAll("a[href^='tel:' i]"));
      if (root.matches && root.matches("a[href^='tel:' i]")) links.push(root);
    }
    for (i = 0; i < texts.length; i++) {
      node = texts[i];
      if (/\d/.test(node.data) && !off(node.parentNode) && (s = swap(node.data)) !== null) { node.data = s; count++; }
    }
    for (i = 0; i < links.length; i++) {
      var n = norm(links[i].getAttribute("href").slice(4).replace(/%[\da-f]{2}/gi, "").split(/[;,?]/)[0]);
      if (n && targets[n] && n !== current && !off(links[i])) { links[i].setAttribute("href", "tel:+" + current); count++; }
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
      var n = got.number ? norm(got.number) : null;
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

  function start() {
    K50.ready = visit();
    K50.ready.catch(function (e) { if (w.console) console.warn(e); });
    timer = setInterval(heartbeat, beat * 1000);
    d.addEventListener("visibilitychange", heartbeat);
  }

  var K50 = w.K50 = {
    version: VERSION,
    rescan: function () { return d.body ? scan(d.body) : 0; },
    number: function () { return current ? "+" + current : null; },
    display: function () { return display; },
    visitorId: function () { return vid; },
    stop: function () { clearInterval(timer); if (observer) observer.disconnect(); observer = null; }
  };
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start); else start();
})(window, document);
