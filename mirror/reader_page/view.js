/* view.js: the page itself: take a file, show the verdict, and only then the edition.
 *
 * The verdict classes, exit codes, hints and the success sentences come from
 * the table mirror exported into this page (mirror/reader/page_verdicts.py,
 * built from mirror/errors.py), in English and Russian; the detail sentence is
 * the one `mirror verify` prints for the same file.
 *
 * Reading: a verified member is read from the file again, checked against its
 * signed SHA-256 once more, and shown in an iframe sandboxed without scripts,
 * under a Content-Security-Policy that allows no network at all (images are
 * inlined as data: URLs from verified bytes, stylesheets as <style>). Links
 * between members are followed by this page; links that leave the edition are
 * not opened, their address is shown instead.
 */
"use strict";

(function (R) {
  const TEXTS = {
    en: {
      heading: "Check an edition",
      pinned: "Publisher pinned in this page:",
      choose: "Choose an edition file (.zip)",
      drop: "or drop it here. It is checked in this browser; nothing is sent anywhere.",
      allowExpired: "Open an expired edition anyway (it may be out of date)",
      open: "Read this edition",
      aboutTitle: "About this page",
      about1:
        "This file checks editions of the publisher above with the same rules as mirror verify: the publisher's signatures, the list of every file, their lengths and hashes, the expiry date, and that you are not shown an older edition than one you already checked here.",
      about2:
        "Keep this page like you keep a key: compare its SHA-256 fingerprint with the one the publisher announced. It works offline, from a file or any web server.",
      root: "Embedded root:",
      toVerdict: "← Verdict",
      back: "Back",
      toIndex: "Index",
      checking: "Checking {name}…",
      checkingMembers: "Checking {name}: {done} of {total} files…",
      details: "Details",
      title: "Title",
      created: "Created",
      expires: "Expires",
      rootVersion: "Root version",
      membersLine: "Files",
      membersValue: "{members} files, {bytes} bytes",
      file: "File",
      memoryEmpty:
        "This browser had not checked an edition of this publisher before, so it cannot yet tell whether this is the newest one. From now on it refuses any edition older than this one.",
      memoryOlder: "The newest edition this browser checked before: version {version} ({eid}).",
      memoryOff:
        "This browser cannot remember editions (its storage is switched off), so it cannot notice an older edition passed off as new.",
      external: "This link leaves the edition and was not opened: {url}",
      missing: "This edition has no file {name}.",
      changed: "{name} no longer matches what was verified: the file changed on your disk. Check it again.",
      bug: "internal error",
    },
    ru: {
      heading: "Проверка выпуска",
      pinned: "Издатель, закреплённый в этой странице:",
      choose: "Выберите файл выпуска (.zip)",
      drop: "или перетащите его сюда. Проверка идёт в этом браузере, ничего никуда не отправляется.",
      allowExpired: "Открыть просроченный выпуск всё равно (он может быть устаревшим)",
      open: "Читать выпуск",
      aboutTitle: "Об этой странице",
      about1:
        "Этот файл проверяет выпуски указанного издателя по тем же правилам, что и mirror verify: подписи издателя, список всех файлов, их длины и хеши, срок действия, и что вам не подсовывают выпуск старше уже проверенного здесь.",
      about2:
        "Храните эту страницу как ключ: сверьте её отпечаток SHA-256 с тем, что опубликовал издатель. Она работает без сети, из файла или с любого веб-сервера.",
      root: "Встроенный корневой ключ:",
      toVerdict: "← Результат",
      back: "Назад",
      toIndex: "Оглавление",
      checking: "Проверяется {name}…",
      checkingMembers: "Проверяется {name}: {done} из {total} файлов…",
      details: "Подробности",
      title: "Название",
      created: "Создан",
      expires: "Действует до",
      rootVersion: "Версия корня",
      membersLine: "Файлы",
      membersValue: "{members} файлов, {bytes} байт",
      file: "Файл",
      memoryEmpty:
        "Этот браузер раньше не проверял выпуски этого издателя, поэтому пока не может сказать, самый ли это новый выпуск. Отныне он отклонит любой выпуск старше этого.",
      memoryOlder: "Самый новый выпуск, проверенный здесь раньше: версия {version} ({eid}).",
      memoryOff:
        "Этот браузер не может запоминать выпуски (хранилище отключено), поэтому не заметит, если вам выдадут старый выпуск за новый.",
      external: "Эта ссылка ведёт за пределы выпуска и не была открыта: {url}",
      missing: "В этом выпуске нет файла {name}.",
      changed: "{name} больше не совпадает с проверенным: файл изменился на диске. Проверьте его снова.",
      bug: "внутренняя ошибка",
    },
  };

  const IMAGE_TYPES = {
    png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif",
    webp: "image/webp", avif: "image/avif", svg: "image/svg+xml",
  };
  const FRAME_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";
  const BASE = "https://edition.invalid/";

  const $ = (id) => document.getElementById(id);
  const format = (text, values) => text.replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));

  const data = JSON.parse($("mirror-reader-data").textContent);
  const ctx = {
    json: { maxIntDigits: data.json.max_int_digits, maxDocumentBytes: data.json.max_document_bytes },
    limits: data.limits,
    folding: data.casefold,
    keyTypes: data.key_types,
    maxRootChain: data.verify.max_root_chain,
    clockSkewMs: data.verify.clock_skew_s * 1000,
    layout: data.layout,
    caps: data.caps,
    streamHashBytes: data.stream_hash_bytes,
  };
  const verdicts = new Map(data.verdicts.map((entry) => [entry.verdict, entry]));

  const state = { lang: "en", runs: 0, result: null, shown: null, history: [], last: null };

  function t(key, values = {}) {
    return format(TEXTS[state.lang][key], values);
  }

  function pickLanguage() {
    const saved = (() => {
      try {
        return localStorage.getItem("mirror-reader/lang");
      } catch (error) {
        return null;
      }
    })();
    if (saved === "en" || saved === "ru") return saved;
    const wanted = (navigator.languages || [navigator.language || "en"]).map((l) => String(l).toLowerCase());
    return wanted.some((l) => l.startsWith("ru")) ? "ru" : "en";
  }

  function setLanguage(lang) {
    state.lang = lang;
    document.documentElement.lang = lang;
    for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(node.dataset.text);
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    }
    try {
      localStorage.setItem("mirror-reader/lang", lang);
    } catch (error) {
      // no storage: the choice lasts as long as the page
    }
    if (state.last) renderVerdict(state.last);
  }

  // --- the pinned root -----------------------------------------------------------------------

  function pinnedRoot() {
    const raw = atob(data.root);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return R.tuf.parseMetadata(bytes, "root", "the pinned root", ctx);
  }

  // --- checking a file -----------------------------------------------------------------------

  async function check(file) {
    const token = (state.token = (state.token || 0) + 1); // a newer file wins over this one
    const started = performance.now();
    document.body.dataset.state = "checking";
    $("verdict").hidden = true;
    $("open").hidden = true;
    state.result = null;
    const progress = $("progress");
    progress.textContent = t("checking", { name: file.name });
    let outcome;
    try {
      const pinned = pinnedRoot();
      await R.tuf.requireThreshold(pinned.signed, "root", pinned, "the pinned root");
      const publisherId = R.tuf.publisherOf(pinned.signed, ctx).id;
      const trust = R.store.loadTrust(publisherId);
      let lastPaint = 0;
      const result = await R.verifyEdition(
        file,
        {
          pinned,
          trust,
          now: Date.now(),
          allowExpired: $("allow-expired").checked,
          progress: (done, total) => {
            const now = performance.now();
            if (now - lastPaint > 150 && token === state.token) {
              lastPaint = now;
              progress.textContent = t("checkingMembers", { name: file.name, done, total });
            }
          },
        },
        ctx,
      );
      const remembered = R.store.applyUpdate(result.update);
      if (token === state.token) state.result = result;
      outcome = { ok: true, result, trust, remembered, file: file.name };
    } catch (error) {
      if (error instanceof R.Verdict) outcome = { ok: false, verdict: error.verdict, message: error.message, file: file.name };
      else outcome = { ok: false, verdict: "error", message: `${t("bug")}: ${error && error.name}: ${error && error.message}`, file: file.name };
    }
    outcome.ms = Math.round(performance.now() - started);
    if (token !== state.token) return;
    progress.textContent = "";
    state.last = outcome;
    renderVerdict(outcome);
    state.runs += 1;
    document.body.dataset.runs = String(state.runs);
    document.body.dataset.state = "done";
  }

  function day(ms) {
    return new Date(ms).toISOString().slice(0, 10);
  }

  function detail(list, label, value) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }

  function renderVerdict(outcome) {
    const box = $("verdict");
    const list = $("verdict-details");
    list.replaceChildren();
    const warning = $("verdict-warning");
    warning.hidden = true;
    const note = $("verdict-note");
    note.hidden = true;
    const memory = $("verdict-memory");
    memory.textContent = "";
    if (outcome.ok) {
      const r = outcome.result;
      const values = {
        publisher: r.publisher, eid: r.eid, version: r.version, date: day(r.created),
        expires: day(r.expires), days: Math.floor(r.freshness.ageMs / 86400000),
      };
      // As `mirror verify --json` names it: expired first, then superseded.
      const name = r.freshness.expired ? "expired-allowed" : r.superseded ? "superseded" : "verified";
      const entry = verdicts.get(name);
      box.dataset.verdict = entry.verdict;
      box.dataset.exitCode = "0";
      $("verdict-title").textContent = entry.title[state.lang];
      $("verdict-sentence").textContent = format(verdicts.get("verified").sentence[state.lang], values);
      if (r.freshness.expired) {
        warning.textContent = format(entry.sentence[state.lang], values);
        warning.hidden = false;
      }
      if (r.superseded) {
        note.textContent = format(verdicts.get("superseded").sentence[state.lang], {
          root_version: r.superseded.rootVersion,
          retired: day(r.superseded.retired),
          newest_root_version: r.superseded.newestRootVersion,
        });
        note.hidden = false;
      }
      $("verdict-hint").textContent = entry.hint[state.lang];
      if (!outcome.remembered) memory.textContent = t("memoryOff");
      else if (outcome.trust.highest === null) memory.textContent = t("memoryEmpty");
      else memory.textContent = t("memoryOlder", { version: outcome.trust.highest[0], eid: outcome.trust.highest[1] });
      detail(list, t("title"), r.title);
      detail(list, t("created"), new Date(r.created).toISOString());
      detail(list, t("expires"), new Date(r.expires).toISOString());
      detail(list, t("rootVersion"), String(r.rootVersion));
      detail(list, t("membersLine"), t("membersValue", { members: r.members, bytes: r.contentBytes.toLocaleString("en") }));
      $("open").hidden = false;
    } else {
      const entry = verdicts.get(outcome.verdict) || verdicts.get("error");
      box.dataset.verdict = outcome.verdict;
      box.dataset.exitCode = String(entry.exit_code);
      $("verdict-title").textContent = entry.title[state.lang];
      $("verdict-sentence").textContent = outcome.message;
      $("verdict-hint").textContent = entry.hint[state.lang];
      $("open").hidden = true;
    }
    detail(list, t("file"), outcome.file);
    box.dataset.ms = String(outcome.ms);
    box.hidden = false;
  }

  // --- reading -------------------------------------------------------------------------------

  function extension(name) {
    const base = name.slice(name.lastIndexOf("/") + 1);
    const dot = base.lastIndexOf(".");
    return dot < 0 ? "" : base.slice(dot + 1).toLowerCase();
  }

  /** A link's target inside the edition, relative to member `from`, or null if it leaves it. */
  function resolve(href, from) {
    let url;
    try {
      url = new URL(href, BASE + from.split("/").map(encodeURIComponent).join("/"));
    } catch (error) {
      return null;
    }
    if (url.origin + "/" !== BASE) return null;
    let name;
    try {
      name = decodeURIComponent(url.pathname.slice(1));
    } catch (error) {
      return null;
    }
    return { name, fragment: url.hash ? decodeURIComponent(url.hash.slice(1)) : "" };
  }

  function dataUrl(bytes, type) {
    let raw = "";
    for (let i = 0; i < bytes.length; i += 0x8000) raw += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return `data:${type};base64,${btoa(raw)}`;
  }

  async function verifiedBytes(name) {
    const bytes = await R.verifiedMember(state.result, name, ctx);
    return bytes;
  }

  const DROP = "script, noscript, iframe, frame, frameset, object, embed, applet, base, meta, link, form, video, audio, source, track, portal";

  /** The member's HTML with everything that could run or fetch removed, ready for srcdoc. */
  async function prepareHtml(name, bytes) {
    const doc = new DOMParser().parseFromString(new TextDecoder("utf-8").decode(bytes), "text/html");
    const styles = [];
    for (const link of doc.querySelectorAll("link[rel~='stylesheet'][href]")) {
      const target = resolve(link.getAttribute("href"), name);
      if (target && extension(target.name) === "css") {
        const css = await verifiedBytes(target.name).catch(() => null);
        if (css) styles.push(new TextDecoder("utf-8").decode(css));
      }
    }
    for (const node of doc.querySelectorAll(DROP)) node.remove();
    for (const node of doc.querySelectorAll("*")) {
      for (const attribute of Array.from(node.attributes)) {
        const key = attribute.name.toLowerCase();
        if (key.startsWith("on") || ["srcset", "formaction", "ping", "background", "poster", "action", "xlink:href"].includes(key)) {
          node.removeAttribute(attribute.name);
        }
      }
    }
    for (const image of doc.querySelectorAll("img, input[type='image']")) {
      const source = image.getAttribute("src");
      image.removeAttribute("src");
      const target = source === null ? null : resolve(source, name);
      const type = target && IMAGE_TYPES[extension(target.name)];
      if (type) {
        const pixels = await verifiedBytes(target.name).catch(() => null);
        if (pixels) image.setAttribute("src", dataUrl(pixels, type));
      }
    }
    for (const anchor of doc.querySelectorAll("a[href], area[href]")) {
      const href = anchor.getAttribute("href");
      anchor.setAttribute("data-mirror-href", href);
      anchor.setAttribute("href", href.startsWith("#") ? href : "#");
    }
    const head = doc.head || doc.documentElement.insertBefore(doc.createElement("head"), doc.body);
    const policy = doc.createElement("meta");
    policy.setAttribute("http-equiv", "Content-Security-Policy");
    policy.setAttribute("content", FRAME_POLICY);
    const referrer = doc.createElement("meta");
    referrer.setAttribute("name", "referrer");
    referrer.setAttribute("content", "no-referrer");
    const charset = doc.createElement("meta");
    charset.setAttribute("charset", "utf-8");
    head.prepend(charset, policy, referrer);
    for (const css of styles) {
      const style = doc.createElement("style");
      style.textContent = css;
      head.append(style);
    }
    return "<!doctype html>\n" + doc.documentElement.outerHTML;
  }

  function escapeHtml(text) {
    return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  function notice(text) {
    const box = $("notice");
    box.textContent = text;
    box.hidden = !text;
  }

  async function show(name, fragment = "", remember = true) {
    if (state.result === null) return; // nothing is shown without a verified verdict
    const bytes = await verifiedBytes(name).catch((error) => {
      if (error instanceof R.Verdict) {
        notice(t("changed", { name }));
        return undefined;
      }
      throw error;
    });
    if (bytes === undefined) return;
    if (bytes === null) {
      notice(t("missing", { name }));
      return;
    }
    notice("");
    const kind = extension(name);
    let html;
    const head = `<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${FRAME_POLICY}"><meta name="viewport" content="width=device-width, initial-scale=1">`;
    if (kind === "html" || kind === "htm") html = await prepareHtml(name, bytes);
    else if (IMAGE_TYPES[kind]) {
      html = `${head}<body style="margin:0;padding:1rem"><img alt="${escapeHtml(name)}" style="max-width:100%;height:auto" src="${dataUrl(bytes, IMAGE_TYPES[kind])}">`;
    } else {
      html = `${head}<body style="margin:0;padding:1rem"><pre style="white-space:pre-wrap;overflow-wrap:anywhere">${escapeHtml(new TextDecoder("utf-8").decode(bytes))}</pre>`;
    }
    if (remember && state.shown !== null) state.history.push(state.shown);
    state.shown = { name, fragment };
    $("location").textContent = name;
    $("check").hidden = true;
    $("reader").hidden = false;
    document.body.dataset.reading = "";
    const frame = $("frame");
    frame.dataset.member = name;
    frame.onload = () => {
      const doc = frame.contentDocument;
      if (!doc) return;
      doc.addEventListener("click", (event) => onFrameClick(event, name), true);
      if (fragment) {
        const target = doc.getElementById(fragment) || doc.getElementsByName(fragment)[0];
        if (target) target.scrollIntoView();
      }
      frame.dataset.loaded = name;
    };
    frame.dataset.loaded = "";
    frame.srcdoc = html;
  }

  function onFrameClick(event, from) {
    const anchor = event.target && event.target.closest && event.target.closest("a, area");
    if (!anchor) return;
    event.preventDefault();
    const href = anchor.getAttribute("data-mirror-href");
    if (href === null) return;
    if (href.startsWith("#")) {
      const doc = $("frame").contentDocument;
      const id = decodeURIComponent(href.slice(1));
      const target = doc && (doc.getElementById(id) || doc.getElementsByName(id)[0]);
      if (target) target.scrollIntoView();
      return;
    }
    const target = resolve(href, from);
    if (target === null) {
      notice(t("external", { url: href }));
      return;
    }
    show(target.name, target.fragment).catch(report);
  }

  function report(error) {
    notice(`${t("bug")}: ${error && error.message}`);
  }

  // --- wiring --------------------------------------------------------------------------------

  function start() {
    setLanguage(pickLanguage());
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.addEventListener("click", () => setLanguage(button.dataset.lang));
    }
    $("file").addEventListener("change", () => {
      const file = $("file").files[0];
      if (file) check(file);
    });
    const drop = $("drop");
    document.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
    document.addEventListener("dragleave", () => drop.classList.remove("over"));
    document.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) check(file);
    });
    $("open").addEventListener("click", () => {
      state.history = [];
      state.shown = null;
      show(ctx.layout.index_member).catch(report);
    });
    $("to-index").addEventListener("click", () => show(ctx.layout.index_member).catch(report));
    $("back").addEventListener("click", () => {
      const previous = state.history.pop();
      if (previous) show(previous.name, previous.fragment, false).catch(report);
      else showVerdict();
    });
    $("to-verdict").addEventListener("click", showVerdict);
    document.body.dataset.state = "ready";
  }

  function showVerdict() {
    delete document.body.dataset.reading;
    $("reader").hidden = true;
    $("check").hidden = false;
    $("frame").removeAttribute("srcdoc");
  }

  R.view = { check, show, texts: TEXTS };
  start();
})((globalThis.MirrorReader = globalThis.MirrorReader || {}));
