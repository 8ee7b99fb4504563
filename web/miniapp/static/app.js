/*
 * ariabot Mini App: the page's only script (index.html loads it after Telegram's
 * telegram-web-app.js, which may be missing: then everything still works from the
 * URL fragment). It lists this chat's downloads, pauses, resumes and cancels them,
 * picks a torrent's files, and follows live changes from api/events.
 *
 * The event stream is read with fetch() and a stream reader, not EventSource,
 * because EventSource cannot send the "Authorization: tma <initData>" header that
 * every API request needs. All URLs are relative: a proxy may put us under any prefix.
 * The DOM is built with createElement/textContent only; nothing is parsed as HTML.
 */
(function () {
  "use strict";

  const tg = (window.Telegram && window.Telegram.WebApp) || null;
  const fragment = new URLSearchParams(location.hash.slice(1));
  let initData = (tg && tg.initData) || fragment.get("tgWebAppData") || "";
  const SESSION_KEY = "ariabot-session";

  const PAUSABLE = new Set(["downloading", "metadata", "queued", "seeding"]);
  const TRANSFERRING = new Set(["downloading", "metadata", "seeding"]);
  const TOAST_MS = 4000;
  const RETRY_FIRST_MS = 2000;
  const RETRY_MAX_MS = 30000;
  const STALL_MS = 45000; // the server pings every 15 s: silence this long means a dead link
  const SIGN_IN_HINT = "Open ariabot from its menu button in Telegram.";

  const THEME_VARS = {
    bg_color: "--bg",
    text_color: "--text",
    hint_color: "--hint",
    link_color: "--link",
    button_color: "--button",
    button_text_color: "--button-text",
    secondary_bg_color: "--secondary-bg",
    destructive_text_color: "--destructive",
  };
  const COLOR_RE = /^(#[0-9a-f]{3,8}|rgba?\([0-9.,%\s]+\))$/i;

  const FINISHED = new Set(["complete", "seeding"]);

  const state = {
    can: { link: false, send: false, mirror: false }, // from api/me
    views: new Map(), // download id -> last View
    signatures: new Map(), // download id -> JSON of the View last drawn
    busy: new Set(), // "id:action" while a request is in flight
    loaded: false,
    stopped: false, // set by a fatal error
    pendingCancel: null,
    files: null, // the open file screen: {id, editable, baseline, lengths, busy}
    filesToken: 0,
    listScroll: 0,
    toastTimer: 0,
    streamAbort: null,
    wake: null,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function actionButton(action, label, className) {
    const button = el("button", className, label);
    button.type = "button";
    button.dataset.action = action;
    return button;
  }

  /* ---------- theme ---------- */

  function fragmentTheme() {
    const raw = fragment.get("tgWebAppThemeParams");
    if (!raw) return null;
    try {
      const params = JSON.parse(raw);
      return params && typeof params === "object" ? params : null;
    } catch (e) {
      return null;
    }
  }

  function currentTheme() {
    const params = tg && tg.themeParams;
    if (params && Object.keys(params).length) return params;
    return fragmentTheme();
  }

  function applyTheme(params) {
    if (!params) return;
    const root = document.documentElement;
    for (const [key, name] of Object.entries(THEME_VARS)) {
      const value = typeof params[key] === "string" ? params[key].trim() : "";
      if (COLOR_RE.test(value)) root.style.setProperty(name, value);
    }
    // Older clients send no secondary or hint colour: derive them from bg and text.
    if (COLOR_RE.test(String(params.bg_color || "").trim())) {
      if (!params.secondary_bg_color) {
        root.style.setProperty("--secondary-bg", "color-mix(in srgb, var(--text) 7%, var(--bg))");
      }
      if (!params.hint_color) {
        root.style.setProperty("--hint", "color-mix(in srgb, var(--text) 55%, var(--bg))");
      }
    }
    const dark = isDark(params.bg_color);
    if (dark !== null) {
      root.classList.toggle("theme-dark", dark);
      root.classList.toggle("theme-light", !dark);
    }
  }

  function isDark(color) {
    let hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(String(color || "").trim());
    if (!hex) return null;
    hex = hex[1].length === 3 ? hex[1].replace(/./g, "$&$&") : hex[1];
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
    return 0.299 * r + 0.587 * g + 0.114 * b < 128;
  }

  function setupTelegram() {
    applyTheme(currentTheme());
    if (!tg) return;
    try {
      tg.ready();
      tg.expand();
      tg.onEvent("themeChanged", () => applyTheme(tg.themeParams));
      if (backButton()) backButton().onClick(closeFiles);
    } catch (e) {
      // An old or partial WebApp object: the page works without it.
    }
  }

  function backButton() {
    if (!tg || !tg.BackButton) return null;
    if (typeof tg.isVersionAtLeast === "function" && !tg.isVersionAtLeast("6.1")) return null;
    return tg.BackButton;
  }

  /* ---------- formatting ---------- */

  const UNITS = ["KiB", "MiB", "GiB", "TiB"];

  function formatBytes(n) {
    if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return "?";
    if (n < 1024) return Math.round(n) + " B";
    let value = n / 1024;
    let unit = 0;
    while (value >= 1023.95 && unit < UNITS.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return value.toFixed(1) + " " + UNITS[unit];
  }

  function formatSpeed(n) {
    return formatBytes(n || 0) + "/s";
  }

  // Rounded up to whole minutes: 73 s is "2 min", 3900 s is "1 h 5 min".
  function formatEta(seconds) {
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0) return "";
    const minutes = Math.ceil(seconds / 60);
    if (minutes < 60) return minutes + " min";
    const hours = Math.floor(minutes / 60);
    const restMinutes = minutes % 60;
    if (hours < 24) return restMinutes ? `${hours} h ${restMinutes} min` : `${hours} h`;
    const days = Math.floor(hours / 24);
    const restHours = hours % 24;
    return restHours ? `${days} d ${restHours} h` : `${days} d`;
  }

  function fraction(progress) {
    const p = Number(progress);
    return Number.isFinite(p) ? Math.min(1, Math.max(0, p)) : 0;
  }

  function formatPercent(progress) {
    return Math.floor(fraction(progress) * 100) + "%";
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  /* ---------- talking to the server ---------- */

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  const FALLBACK_ERRORS = {
    401: "ariabot could not check who you are.",
    403: "You are not allowed to do that.",
    404: "That download is gone.",
    409: "That cannot be done in its current state.",
    429: "Too many requests: wait a moment and try again.",
    503: "ariabot is busy or restarting: try again soon.",
  };
  const OFFLINE_ERROR = "Cannot reach ariabot. Check your connection and try again.";

  function authHeaders(extra) {
    return Object.assign({ Authorization: "tma " + initData }, extra);
  }

  async function errorFrom(response) {
    let text = "";
    try {
      const body = await response.json();
      if (body && typeof body.error === "string") text = body.error;
    } catch (e) {
      // not JSON: use the fallback sentence
    }
    const fallback = FALLBACK_ERRORS[response.status] || `ariabot answered with an error (${response.status}).`;
    return new ApiError(response.status, text || fallback);
  }

  async function api(method, path, body) {
    const options = {
      method,
      headers: authHeaders({ Accept: "application/json" }),
      cache: "no-store",
      credentials: "omit",
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (e) {
      throw new ApiError(0, OFFLINE_ERROR);
    }
    if (!response.ok) throw await errorFrom(response);
    try {
      return (await response.json()) || {};
    } catch (e) {
      return {};
    }
  }

  function downloadPath(id, tail) {
    return "api/downloads/" + encodeURIComponent(id) + "/" + tail;
  }

  // 401 anywhere means the sign-in is gone: nothing else can work.
  function reportError(error) {
    if (error && error.status === 401) showFatal(error.message);
    else toast(error && error.message ? error.message : OFFLINE_ERROR);
  }

  /* ---------- the event stream ---------- */

  // Returns a function to feed decoded text into; calls onEvent(name, data) per frame.
  function sseParser(onEvent) {
    let buffer = "";
    let name = "";
    let data = [];

    function line(text) {
      if (text === "") {
        if (data.length) onEvent(name || "message", data.join("\n"));
        name = "";
        data = [];
        return;
      }
      if (text[0] === ":") return; // a comment, e.g. ": ping"
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }

    return function feed(chunk) {
      buffer += chunk;
      const breaks = /\r\n|\r|\n/g;
      let start = 0;
      let match;
      while ((match = breaks.exec(buffer))) {
        // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
        if (match[0] === "\r" && match.index === buffer.length - 1) break;
        line(buffer.slice(start, match.index));
        start = breaks.lastIndex;
      }
      buffer = buffer.slice(start);
    };
  }

  function handleFrame(name, data) {
    let payload;
    try {
      payload = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (!payload) return;
    if (name === "snapshot") showDownloads(payload.downloads);
    else if (name === "download") upsertDownload(payload);
    else if (name === "removed") removeDownload(Number(payload.id), true);
  }

  // One connection: resolves to true when it delivered a snapshot (so it was healthy).
  async function readEventsOnce() {
    const abort = new AbortController();
    state.streamAbort = abort;
    let gotSnapshot = false;
    let watchdog = 0;
    const kick = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => abort.abort(), STALL_MS);
    };
    try {
      kick();
      const response = await fetch("api/events", {
        headers: authHeaders({ Accept: "text/event-stream" }),
        cache: "no-store",
        credentials: "omit",
        signal: abort.signal,
      });
      if (response.status === 401 || response.status === 403) {
        showFatal((await errorFrom(response)).message);
        return false;
      }
      if (!response.ok || !response.body) return false;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const feed = sseParser((name, data) => {
        if (name === "snapshot") {
          gotSnapshot = true;
          setLive(true);
        }
        handleFrame(name, data);
      });
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        kick();
        feed(decoder.decode(value, { stream: true }));
      }
    } catch (e) {
      // network error, stall or abort: the caller reconnects
    } finally {
      clearTimeout(watchdog);
      if (state.streamAbort === abort) state.streamAbort = null;
    }
    return gotSnapshot;
  }

  async function followEvents() {
    let delay = RETRY_FIRST_MS;
    while (!state.stopped) {
      const healthy = await readEventsOnce();
      if (state.stopped) return;
      setLive(false);
      if (healthy) delay = RETRY_FIRST_MS;
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  // A wait that going back online cuts short.
  function sleep(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        state.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      state.wake = done;
    });
  }

  function setLive(live) {
    $("app").dataset.live = String(live);
    $("conn").hidden = live;
  }

  /* ---------- the list of downloads ---------- */

  function showDownloads(list) {
    const views = Array.isArray(list) ? list : [];
    const keep = new Set(views.map((view) => Number(view && view.id)));
    for (const id of Array.from(state.views.keys())) {
      if (!keep.has(id)) removeDownload(id, true);
    }
    views.forEach(upsertDownload);
    state.loaded = true;
    updateEmpty();
  }

  function upsertDownload(view) {
    const id = Number(view && view.id);
    if (!Number.isFinite(id)) return;
    const signature = JSON.stringify(view);
    if (state.signatures.get(id) === signature && $("card-" + id)) return;
    state.views.set(id, view);
    state.signatures.set(id, signature);
    drawCard(id);
    if (state.files && state.files.id === id) $("files-title").textContent = cardTitle(id);
    updateEmpty();
  }

  function removeDownload(id, announce) {
    const card = $("card-" + id);
    if (card) card.remove();
    state.views.delete(id);
    state.signatures.delete(id);
    if (state.pendingCancel === id) closeConfirm();
    if (state.files && state.files.id === id) {
      closeFiles();
      if (announce) toast(`#${id} is no longer here.`);
    }
    updateEmpty();
  }

  function updateEmpty() {
    $("loading").hidden = state.loaded || state.views.size > 0;
    $("empty").hidden = !state.loaded || state.views.size > 0;
  }

  function cardTitle(id) {
    const view = state.views.get(id);
    return `#${id} ${(view && view.name) || ""}`.trim();
  }

  // Draws (or redraws) one card in place; newest (highest id) first.
  function drawCard(id) {
    const view = state.views.get(id);
    if (!view) return;
    let card = $("card-" + id);
    if (!card) {
      card = el("article", "download");
      card.id = "card-" + id;
      card.dataset.id = String(id);
      card.setAttribute("aria-labelledby", "name-" + id);
      placeCard(card, id);
    }
    const focused = focusedAction(card);
    fillCard(card, view);
    restoreFocus(card, focused);
  }

  // The list is kept newest (highest id) first. A snapshot comes in that order, so its
  // cards go at the end at once; a new download goes before the first older one.
  function placeCard(card, id) {
    const list = $("downloads");
    const last = list.lastElementChild;
    if (!last || Number(last.dataset.id) > id) {
      list.append(card);
      return;
    }
    for (const other of list.children) {
      if (Number(other.dataset.id) < id) {
        list.insertBefore(card, other);
        return;
      }
    }
    list.append(card);
  }

  function fillCard(card, view) {
    const id = Number(view.id);
    card.dataset.state = String(view.state || "");
    const title = el("h2", "name");
    title.id = "name-" + id;
    title.append(el("span", "num", "#" + id), " ", String(view.name || "(no name yet)"));

    const bar = el("progress", "progress");
    bar.max = 1;
    bar.value = fraction(view.progress);
    bar.setAttribute("aria-label", formatPercent(view.progress) + " done");

    const parts = [title, bar, statusLine(view)];
    const actions = actionButtons(view);
    if (actions) parts.push(actions);
    card.replaceChildren(...parts);
  }

  function statusLine(view) {
    const line = el("p", "status");
    const bits = [
      ["state", String(view.state_label || view.state || "")],
      ["percent", formatPercent(view.progress)],
    ];
    if (view.total_bytes > 0) {
      bits.push(["size", formatBytes(view.completed_bytes) + " of " + formatBytes(view.total_bytes)]);
    }
    if (TRANSFERRING.has(view.state)) {
      bits.push(["speed", "↓ " + formatSpeed(view.download_speed) + " ↑ " + formatSpeed(view.upload_speed)]);
    }
    const eta = view.state === "downloading" ? formatEta(view.eta_seconds) : "";
    if (eta) bits.push(["eta", "ETA " + eta]);
    if (TRANSFERRING.has(view.state) && typeof view.peers === "number") {
      let peers = plural(view.peers, "peer");
      if (typeof view.seeders === "number") peers += ", " + plural(view.seeders, "seeder");
      bits.push(["peers", peers]);
    }
    if (view.queue_position !== null && view.queue_position !== undefined) {
      bits.push(["queue", "queue position " + view.queue_position]);
    }
    bits.forEach(([kind, text], i) => {
      if (i) line.append(" · ");
      line.append(el("span", kind, text));
    });
    if (view.error) line.append(el("span", "note error", String(view.error)));
    else if (view.stuck_reason) line.append(el("span", "note stuck", String(view.stuck_reason)));
    if (view.elsewhere) line.append(el("span", "note", String(view.elsewhere)));
    return line;
  }

  function actionButtons(view) {
    const box = el("div", "actions");
    const id = Number(view.id);
    const add = (action, label, className) => {
      const button = actionButton(action, label, className);
      button.disabled = state.busy.has(id + ":" + action);
      box.append(button);
    };
    if (view.may_act && PAUSABLE.has(view.state)) add("pause", "Pause", "secondary");
    if (view.may_act && view.state === "paused") add("resume", "Resume", "secondary");
    if (view.has_files) add("files", "Files", "secondary");
    if (FINISHED.has(view.state)) {
      if (state.can.link) add("link", "Link", "secondary");
      if (state.can.send) add("send", "Send to chat", "secondary");
      if (view.may_act && state.can.mirror) add("mirror", "Mirror", "secondary");
    }
    if (view.may_act) add("cancel", "Cancel", "danger");
    return box.childElementCount ? box : null;
  }

  function focusedAction(card) {
    const active = document.activeElement;
    return active && card.contains(active) && active.dataset ? active.dataset.action || null : null;
  }

  function restoreFocus(card, action) {
    if (!action) return;
    const same = card.querySelector(`button[data-action="${action}"]`);
    const any = card.querySelector("button[data-action]");
    if (same || any) (same || any).focus();
  }

  function onListClick(event) {
    const button = event.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    const id = Number(button.closest(".download").dataset.id);
    const action = button.dataset.action;
    if (action === "files") openFiles(id);
    else if (action === "cancel") askCancel(id);
    else runAction(id, action); // pause, resume, link, send, mirror
  }

  // A finished download's page (its files, a player for media) opens outside the Mini App.
  function openPage(url) {
    if (tg && typeof tg.openLink === "function") tg.openLink(url);
    else window.open(url, "_blank", "noopener,noreferrer");
  }

  async function runAction(id, action) {
    const key = id + ":" + action;
    state.busy.add(key);
    drawCard(id);
    try {
      const data = await api("POST", downloadPath(id, action), {});
      if (data.download) upsertDownload(data.download);
      if (typeof data.message === "string" && data.message) toast(data.message);
      if (typeof data.url === "string" && /^https?:\/\//.test(data.url)) openPage(data.url);
    } catch (error) {
      reportError(error);
    } finally {
      state.busy.delete(key);
      drawCard(id);
    }
  }

  /* ---------- cancel confirmation ---------- */

  function askCancel(id) {
    state.pendingCancel = id;
    $("confirm-text").textContent = `Cancel ${cardTitle(id)}?`;
    $("delete-files").checked = false;
    const dialog = $("confirm");
    if (dialog.open) return;
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    $("confirm-no").focus();
  }

  function closeConfirm() {
    state.pendingCancel = null;
    const dialog = $("confirm");
    if (!dialog.open) return;
    if (typeof dialog.close === "function") dialog.close();
    else dialog.removeAttribute("open");
  }

  async function confirmCancel() {
    const id = state.pendingCancel;
    const deleteFiles = $("delete-files").checked;
    closeConfirm();
    if (id === null) return;
    try {
      const data = await api("POST", downloadPath(id, "cancel"), { delete_files: deleteFiles });
      removeDownload(id, false);
      toast(typeof data.message === "string" && data.message ? data.message : `#${id} is cancelled.`);
    } catch (error) {
      reportError(error);
    }
  }

  /* ---------- file tree ---------- */

  function showScreen(name) {
    const toFiles = name === "files";
    if (toFiles && !$("list").hidden) state.listScroll = window.scrollY;
    $("list").hidden = toFiles;
    $("files").hidden = !toFiles;
    const back = backButton();
    if (back) {
      try {
        if (toFiles) back.show();
        else back.hide();
      } catch (e) {
        // ignore an unsupported client
      }
    }
    window.scrollTo(0, toFiles ? 0 : state.listScroll);
  }

  async function openFiles(id) {
    const token = ++state.filesToken;
    state.files = { id, editable: false, baseline: new Set(), lengths: new Map(), total: 0, busy: false };
    $("files-title").textContent = cardTitle(id);
    $("files-summary").textContent = "";
    $("file-tree").replaceChildren(el("p", "hint", "Loading files…"));
    setEditable(false);
    $("files-note").hidden = true;
    showScreen("files");
    $("back").focus();
    let data;
    try {
      data = await api("GET", downloadPath(id, "files"));
    } catch (error) {
      if (token !== state.filesToken) return;
      closeFiles();
      reportError(error);
      return;
    }
    if (token === state.filesToken && state.files) drawFiles(data);
  }

  function closeFiles() {
    if (!state.files) return;
    const id = state.files.id;
    state.files = null;
    state.filesToken += 1;
    $("file-tree").replaceChildren();
    showScreen("list");
    const button = document.querySelector(`#card-${id} button[data-action="files"]`);
    if (button) button.focus();
  }

  function drawFiles(data) {
    const files = Array.isArray(data.files) ? data.files : [];
    const open = state.files;
    open.editable = data.editable === true;
    open.total = files.length;
    for (const file of files) {
      open.lengths.set(Number(file.index), Number(file.length) || 0);
      if (file.selected) open.baseline.add(Number(file.index));
    }
    const fragmentRoot = document.createDocumentFragment();
    if (files.length) fragmentRoot.append(renderEntries(buildTree(files), open.editable));
    else fragmentRoot.append(el("p", "hint", "The file list is not known yet."));
    $("file-tree").replaceChildren(fragmentRoot);
    refreshFolderChecks();
    setEditable(open.editable);
    $("files-note").hidden = open.editable || !files.length;
    updateFilesControls();
  }

  function newFolder(name) {
    return { name, folders: new Map(), files: [], length: 0, completed: 0 };
  }

  // "Show/S01/E01.mkv" becomes folder Show > folder S01 > file E01.mkv.
  function buildTree(files) {
    const root = newFolder("");
    for (const file of files) {
      const parts = String(file.path || "").split("/").filter((part) => part && part !== ".");
      const name = parts.pop() || `file ${file.index}`;
      const length = Number(file.length) || 0;
      const completed = Number(file.completed) || 0;
      let folder = root;
      for (const part of parts) {
        let child = folder.folders.get(part);
        if (!child) {
          child = newFolder(part);
          folder.folders.set(part, child);
        }
        child.length += length;
        child.completed += completed;
        folder = child;
      }
      folder.files.push({ index: Number(file.index), name, length, completed, selected: !!file.selected });
    }
    return root;
  }

  function sizeAndPercent(length, completed) {
    const done = length > 0 ? Math.floor((Math.min(completed, length) / length) * 100) : 100;
    return formatBytes(length) + " · " + done + "%";
  }

  function info(name, length, completed) {
    const box = el("span", "info");
    box.append(el("span", "fname", name), el("span", "meta", sizeAndPercent(length, completed)));
    return box;
  }

  function checkbox(editable) {
    const box = el("input");
    box.type = "checkbox";
    box.disabled = !editable;
    return box;
  }

  function renderEntries(folder, editable) {
    const list = el("ul", "entries");
    for (const child of folder.folders.values()) list.append(renderFolder(child, editable));
    for (const file of folder.files) list.append(renderFile(file, editable));
    return list;
  }

  function renderFolder(folder, editable) {
    const item = el("li", "folder-item");
    const details = el("details", "folder");
    details.open = true;
    const summary = el("summary");
    const label = el("label", "check");
    const box = checkbox(editable);
    box.className = "folder-check";
    label.append(box, el("span", "visually-hidden", "Select everything in " + folder.name));
    summary.append(label, info(folder.name, folder.length, folder.completed));
    details.append(summary, renderEntries(folder, editable));
    item.append(details);
    return item;
  }

  function renderFile(file, editable) {
    const item = el("li", "file");
    const label = el("label", "row");
    const box = checkbox(editable);
    box.className = "file-check";
    box.dataset.index = String(file.index);
    box.checked = file.selected;
    label.append(box, info(file.name, file.length, file.completed));
    item.append(label);
    return item;
  }

  function fileBoxes() {
    return $("file-tree").querySelectorAll("input[data-index]");
  }

  function selectedIndexes() {
    const picked = [];
    for (const box of fileBoxes()) if (box.checked) picked.push(Number(box.dataset.index));
    return picked.sort((a, b) => a - b);
  }

  // Each folder's box is checked, unchecked or indeterminate from the files under it.
  function refreshFolderChecks() {
    for (const folder of $("file-tree").querySelectorAll("details.folder")) {
      const boxes = folder.querySelectorAll("input[data-index]");
      let on = 0;
      for (const box of boxes) if (box.checked) on += 1;
      const own = folder.querySelector(":scope > summary input.folder-check");
      own.checked = boxes.length > 0 && on === boxes.length;
      own.indeterminate = on > 0 && on < boxes.length;
    }
  }

  function onTreeChange(event) {
    const box = event.target;
    if (!state.files || !(box instanceof HTMLInputElement)) return;
    if (box.classList.contains("folder-check")) {
      const folder = box.closest("details.folder");
      for (const file of folder.querySelectorAll("input[data-index]")) file.checked = box.checked;
    }
    refreshFolderChecks();
    updateFilesControls();
  }

  function setAll(checked) {
    if (!state.files || !state.files.editable) return;
    for (const box of fileBoxes()) box.checked = checked;
    refreshFolderChecks();
    updateFilesControls();
  }

  function setEditable(editable) {
    for (const id of ["select-all", "select-none", "apply-files"]) {
      $(id).hidden = !editable;
      $(id).disabled = !editable;
    }
    $("files-hint").hidden = true;
  }

  function updateFilesControls() {
    const open = state.files;
    if (!open) return;
    const picked = selectedIndexes();
    const changed = picked.length !== open.baseline.size || picked.some((i) => !open.baseline.has(i));
    const bytes = picked.reduce((sum, i) => sum + (open.lengths.get(i) || 0), 0);
    $("files-summary").textContent = open.total
      ? `${picked.length} of ${plural(open.total, "file")} selected · ${formatBytes(bytes)}`
      : "";
    $("apply-files").disabled = !open.editable || open.busy || !changed || picked.length === 0;
    $("files-hint").hidden = !open.editable || picked.length > 0;
  }

  async function applyFiles() {
    const open = state.files;
    if (!open || !open.editable || open.busy) return;
    const selected = selectedIndexes();
    if (!selected.length) return;
    open.busy = true;
    updateFilesControls();
    try {
      const data = await api("POST", downloadPath(open.id, "files"), { selected });
      if (data.download) upsertDownload(data.download);
      open.baseline = new Set(selected);
      toast(`Saved: ${plural(selected.length, "file")} selected.`);
    } catch (error) {
      reportError(error);
    } finally {
      open.busy = false;
      if (state.files === open) updateFilesControls();
    }
  }

  /* ---------- toast and fatal page ---------- */

  function toast(message) {
    const box = $("toast");
    box.textContent = message;
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(() => {
      box.textContent = "";
    }, TOAST_MS);
  }

  function showFatal(message, canRetry) {
    state.stopped = true;
    if (state.streamAbort) state.streamAbort.abort();
    if (state.wake) state.wake();
    closeConfirm();
    const back = backButton();
    if (back) {
      try {
        back.hide();
      } catch (e) {
        // ignore
      }
    }
    $("app").hidden = true;
    const box = $("fatal");
    box.replaceChildren(el("p", "fatal-error", message));
    if (canRetry) {
      const retry = el("button", "", "Try again");
      retry.type = "button";
      retry.id = "retry";
      retry.addEventListener("click", () => location.reload());
      box.append(retry);
    } else {
      box.append(el("p", "fatal-hint", SIGN_IN_HINT));
    }
    box.hidden = false;
  }

  /* ---------- start ---------- */

  function wire() {
    $("downloads").addEventListener("click", onListClick);
    $("file-tree").addEventListener("change", onTreeChange);
    $("select-all").addEventListener("click", () => setAll(true));
    $("select-none").addEventListener("click", () => setAll(false));
    $("apply-files").addEventListener("click", applyFiles);
    $("back").addEventListener("click", closeFiles);
    $("confirm-yes").addEventListener("click", confirmCancel);
    $("confirm-no").addEventListener("click", closeConfirm);
    $("confirm").addEventListener("close", () => {
      state.pendingCancel = null;
    });
    window.addEventListener("online", () => {
      if (state.wake) state.wake();
    });
  }

  // A /web login link (a browser outside Telegram): its one-time code is exchanged for a
  // session, kept in this tab's sessionStorage (never a cookie, which another site could
  // make the browser send) so that a reload still works; the code leaves the address bar.
  async function signIn() {
    const login = fragment.get("login");
    if (!login) {
      if (!initData) initData = sessionStorage.getItem(SESSION_KEY) || "";
      return;
    }
    history.replaceState(null, "", location.pathname + location.search);
    let response;
    try {
      response = await fetch("api/login", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ login }),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (e) {
      throw new ApiError(0, OFFLINE_ERROR);
    }
    if (!response.ok) throw await errorFrom(response);
    initData = (await response.json()).session || "";
    sessionStorage.setItem(SESSION_KEY, initData);
  }

  async function start() {
    wire();
    setupTelegram();
    let me;
    try {
      await signIn();
      me = await api("GET", "api/me");
    } catch (error) {
      const signIn = error.status === 401 || error.status === 403;
      showFatal(error.message, !signIn);
      return;
    }
    $("chat-title").textContent = (me.chat && me.chat.title) || "ariabot";
    if (me.can) state.can = me.can;
    followEvents(); // its first frame is the list: asked once, not also from api/downloads
  }

  start();
})();
