// The console's page: fills itself from the management API (/api/v1) and follows its
// events. Every value from the host goes in as text (device names come from strangers).
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;

async function api(path, method = "GET", body) {
  const response = await fetch("/api/v1" + path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return answerOf(response);
}

async function answerOf(response) {
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

// Box art for app `id`: the picture file as it is (the host scales it).
async function uploadArt(id, file) {
  const response = await fetch("/api/v1/apps/" + id + "/art", {
    method: "PUT",
    headers: { "Content-Type": file.type || "application/octet-stream", "X-CSRF-Token": csrf },
    body: file,
  });
  return answerOf(response);
}

// An element with attributes (`on*` ones as listeners) and children (strings as text).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function show(id, visible) {
  document.getElementById(id).hidden = !visible;
}

// Devices waiting for a PIN: one form each.
function showPairing(devices) {
  show("no-waiting", devices.length === 0);
  const list = document.getElementById("waiting");
  list.replaceChildren(...devices.map((device) => {
    const pin = el("input", { name: "pin", inputmode: "numeric", pattern: "[0-9]{4}", maxlength: "4", required: "", autocomplete: "off", "aria-label": "PIN" });
    const form = el("form", {
      onsubmit: async (event) => {
        event.preventDefault();
        const result = document.getElementById("pair-result");
        result.textContent = "Pairing " + device + " …";
        try {
          const answer = await api("/pin", "POST", { pin: pin.value, device });
          result.textContent = "Paired with " + answer.paired + ".";
        } catch (e) {
          result.textContent = "Not paired: " + e.message;
        }
      },
    }, pin, el("button", { type: "submit" }, "Pair"));
    return el("li", { class: "device" }, el("span", { class: "name" }, device), form);
  }));
}

// Paired devices: rename in place, remove after a second click, what each may do. An
// unchanged client keeps its element (and an editor the user has open).
const shownClients = new Map();

function showClients(clients) {
  show("no-clients", clients.length === 0);
  document.getElementById("client-list").replaceChildren(...clients.map((client) => {
    const json = JSON.stringify(client);
    const shown = shownClients.get(client.fingerprint);
    if (shown && shown.json === json) return shown.node;
    const node = clientItem(client);
    shownClients.set(client.fingerprint, { json, node });
    return node;
  }));
}

function clientItem(client) {
  const key = client.fingerprint;
  const name = el("input", { value: client.name, maxlength: "64", "aria-label": "Name" });
  const rename = el("form", {
    class: "rename",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api("/clients/" + key + "/name", "PUT", { name: name.value });
      } catch (e) {
        alertIn(item, e.message);
      }
    },
  }, name, el("button", { type: "submit" }, "Rename"));
  const remove = removeButton(async () => {
    try {
      await api("/clients/" + key, "DELETE");
    } catch (e) {
      alertIn(item, e.message);
    }
  });
  const since = new Date(client.paired_at * 1000).toLocaleDateString();
  const item = el("li", { class: "client", "data-fingerprint": key, "data-name": client.name }, rename,
    el("span", { class: "meta" }, "paired " + since + " · " + key.slice(0, 8)), remove,
    permissionsEditor(key, client.permissions));
  return item;
}

// What a client may do: the whole set is sent on save.
function permissionsEditor(key, permissions) {
  const box = (name, label, checked) => {
    const input = el("input", { type: "checkbox", name });
    input.checked = checked;
    return [input, el("label", {}, input, " " + label)];
  };
  const [viewOnly, viewOnlyLabel] = box("view_only", "view only (its input is dropped)", permissions.view_only);
  const [others, othersLabel] = box("others", "may resume and quit others' sessions", permissions.others);
  const [clipboard, clipboardLabel] = box("clipboard", "shares the clipboard", permissions.clipboard);
  const [everyApp, everyAppLabel] = box("every_app", "every app", permissions.apps === null || permissions.apps === undefined);
  const appBoxes = catalog.map((app) => {
    const [input, label] = box("app", app.title, (permissions.apps || []).includes(app.title));
    input.dataset.title = app.title;
    return [input, label];
  });
  const saved = el("span", { class: "meta", role: "status" });
  const form = el("form", {
    class: "permissions",
    onsubmit: async (event) => {
      event.preventDefault();
      // Without the catalog the app list is unknown: never save an empty one by mistake.
      if (!everyApp.checked && catalog.length === 0) {
        saved.textContent = "the app list did not load: reload the page";
        return;
      }
      const apps = everyApp.checked ? null : appBoxes.filter(([input]) => input.checked).map(([input]) => input.dataset.title);
      try {
        await api("/clients/" + key + "/permissions", "PUT",
          { apps, view_only: viewOnly.checked, others: others.checked, clipboard: clipboard.checked });
        saved.textContent = "saved";
      } catch (e) {
        saved.textContent = e.message;
      }
    },
  }, viewOnlyLabel, othersLabel, clipboardLabel, everyAppLabel,
  el("fieldset", { class: "apps" }, el("legend", {}, "or only these apps"), ...appBoxes.map(([, label]) => label)),
  el("button", { type: "submit" }, "Save"), saved);
  return el("details", { class: "permissions" }, el("summary", {}, "What it may do"), form);
}

// A "Remove" button that asks once more before it does `remove`.
function removeButton(remove) {
  const button = el("button", {
    type: "button",
    class: "danger",
    onclick: () => {
      if (button.dataset.armed !== "yes") {
        button.dataset.armed = "yes";
        button.textContent = "Really remove?";
        return;
      }
      remove();
    },
  }, "Remove");
  return button;
}

function alertIn(node, message) {
  node.querySelector(".error")?.remove();
  node.append(el("p", { class: "error", role: "alert" }, message));
}

// Live sessions: figures and a plot of the last minute's bitrate and frame rate.
const history = new Map();
const KEEP = 60;
// What last moved a stream's FEC parity (the host's `parity_why`).
const PARITY_WHY = {
  start: "cautious start",
  loss: "raised for loss",
  unrecoverable: "raised: a frame was lost",
  cleared: "lowered: link cleared",
};

function showStatus(status) {
  const sessions = status.sessions || [];
  show("no-sessions", sessions.length === 0);
  for (const id of history.keys()) {
    if (!sessions.some((s) => s.id === id)) history.delete(id);
  }
  document.getElementById("session-list").replaceChildren(...sessions.map((s) => {
    const live = s.live || { window_ms: 0, stats: {} };
    const window = Math.max(live.window_ms, 1);
    const kbps = (live.stats.bytes || 0) * 8 / window;
    const fps = (live.stats.frames || 0) * 1000 / window;
    const points = history.get(s.id) || [];
    const lost = s.received ? s.received.frames_lost : s.keyframe_requests + (s.frames_invalidated ?? 0);
    const repaired = (s.received ? s.received.frames_recovered : s.blocks_repaired) || 0;
    const latency = (live.stats.host_latency_us_p50 || 0) / 1000;
    const last = points[points.length - 1];
    const lossNow = last ? Math.max(0, lost - last.lost) : 0;
    const repairNow = last ? Math.max(0, repaired - last.repaired) : 0;
    points.push({ kbps, fps, latency, lost, lossNow, repaired, repairNow, fec: live.stats.fec_percent || 0 });
    if (points.length > KEEP) points.shift();
    history.set(s.id, points);
    const canvas = el("canvas", { width: "360", height: "90", class: "plot rate", "data-points": String(points.length), "aria-label": "bit rate and frame rate, last minute" });
    plot(canvas, [[points.map((p) => p.kbps), "#3b82f6"], [points.map((p) => p.fps), "#f59e0b"]]);
    const health = el("canvas", { width: "360", height: "90", class: "plot health", "data-points": String(points.length), "aria-label": "latency, FEC parity, FEC repairs and losses, last minute" });
    plot(health, [[points.map((p) => p.latency), "#10b981"], [points.map((p) => p.fec), "#8b5cf6"], [points.map((p) => p.repairNow), "#06b6d4"], [points.map((p) => p.lossNow), "#dc2626"]]);
    const received = s.received;
    const loss = received ? `${received.frames_lost ?? 0} frames lost, ${received.frames_recovered ?? 0} repaired` : `${s.blocks_repaired} blocks repaired by FEC, ${s.blocks_lost} lost, ${s.keyframe_requests} key frames asked for, ${s.frames_invalidated ?? 0} lost frames reported for repair`;
    const figures = [
      `${fps.toFixed(0)} fps`,
      `${(kbps / 1000).toFixed(1)} Mbit/s`,
      `host latency ${((live.stats.host_latency_us_p50 || 0) / 1000).toFixed(1)} ms`,
      `FEC ${live.stats.fec_percent ?? 0} %${PARITY_WHY[live.stats.parity_why] ? ` (${PARITY_WHY[live.stats.parity_why]}, loss ${((live.stats.loss_permille || 0) / 10).toFixed(1)} %)` : ""}`,
      loss,
    ].join(" · ");
    return el("article", { class: "session", "data-id": String(s.id) },
      el("h3", {}, `${s.app_title} for ${s.client}`),
      el("p", { class: "meta" }, [s.mode, s.video, s.encoding, s.login, s.address].filter(Boolean).join(" · ")),
      el("p", { class: "figures" }, figures),
      el("div", { class: "plots" }, canvas, health));
  }));
}

// Lines of [values, colour], each scaled to its own largest value.
function plot(canvas, lines) {
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  g.clearRect(0, 0, width, height);
  for (const [values, colour] of lines) {
    const top = Math.max(...values, 1);
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    values.forEach((v, i) => {
      const x = (i / (KEEP - 1)) * width;
      const y = height - 2 - (v / top) * (height - 4);
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
  }
}

// The app catalog (also what the permissions editor offers): configured apps edited in
// place (the host writes them to its configuration file), found ones listed.
let catalog = [];

async function showApps() {
  catalog = await api("/apps");
  const configured = catalog.filter((app) => app.source === "config");
  document.getElementById("app-list").replaceChildren(...catalog.map((app) =>
    app.source === "config" ? configuredApp(app, configured) : el("li", { class: "app", "data-title": app.title },
      thumbnail(app), el("span", { class: "name" }, app.title), el("span", { class: "meta" }, "found: " + app.source))));
}

// The app's box art, small; an empty frame where it has none.
function thumbnail(app) {
  if (!app.box_art) return el("span", { class: "art none", title: "no box art" });
  return el("img", { class: "art", src: "/api/v1/apps/" + app.id + "/art", alt: "box art of " + app.title, loading: "lazy" });
}

// A command line as its arguments: words, or "…" / '…' quoted ones.
function splitCommand(line) {
  const args = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)) {
    args.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2] !== undefined ? m[2] : m[3]);
  }
  return args;
}

function joinCommand(args) {
  return args.map((a) => (a === "" || /[\s"']/.test(a) ? '"' + a.replace(/(["\\])/g, "\\$1") + '"' : a)).join(" ");
}

function appFields(app) {
  return {
    title: el("input", { name: "title", value: app.title, required: "", maxlength: "100", "aria-label": "Title" }),
    command: el("input", { name: "command", class: "command", value: joinCommand(app.command), required: "", "aria-label": "Command" }),
    art: el("input", { name: "art", type: "file", accept: "image/png,image/jpeg", "aria-label": "Box art" }),
  };
}

// What the form says of the app; its art is uploaded on its own (`saveArt`).
function edited(fields, app) {
  return { title: fields.title.value, command: splitCommand(fields.command.value), image: app.box_art || null, working_dir: app.working_dir || null };
}

async function saveArt(fields, id) {
  const file = fields.art.files[0];
  if (file) await uploadArt(id, file);
}

function configuredApp(app, configured) {
  const fields = appFields(app);
  const status = el("span", { class: "meta", role: "status" });
  const act = async (what, done) => {
    try {
      const answer = await what();
      status.textContent = done(answer);
    } catch (e) {
      status.textContent = e.message;
    }
  };
  const rest = configured.slice(1).map((a) => a.id);
  const move = (by) => async () => {
    const at = rest.indexOf(app.id);
    const to = at + by;
    if (at < 0 || to < 0 || to >= rest.length) return;
    [rest[at], rest[to]] = [rest[to], rest[at]];
    await act(() => api("/apps/order", "PUT", { ids: rest }), () => "moved");
    await showApps();
  };
  const desktop = app.id === configured[0].id;
  const buttons = [
    el("button", { type: "submit" }, "Save"),
    el("button", { type: "button", class: "test", onclick: () => { status.textContent = "starting …"; act(() => api("/apps/" + app.id + "/launch", "POST"), () => "started"); } }, "Test"),
  ];
  if (app.box_art) {
    buttons.push(el("button", { type: "button", class: "remove-art", onclick: async () => {
      await act(() => api("/apps/" + app.id + "/art", "DELETE"), () => "art removed");
      await showApps();
    } }, "No art"));
  }
  if (!desktop) {
    const remove = removeButton(async () => {
      await act(() => api("/apps/" + app.id, "DELETE"), () => "removed");
      await showApps();
    });
    buttons.push(el("button", { type: "button", class: "up", "aria-label": "Move up", onclick: move(-1) }, "↑"),
      el("button", { type: "button", class: "down", "aria-label": "Move down", onclick: move(1) }, "↓"), remove);
  }
  const form = el("form", {
    class: "app-edit",
    onsubmit: async (event) => {
      event.preventDefault();
      await act(async () => {
        await api("/apps/" + app.id, "PUT", edited(fields, app));
        await saveArt(fields, app.id);
      }, () => "saved");
      await showApps();
    },
  }, thumbnail(app), fields.title, fields.command, fields.art, ...buttons, status);
  return el("li", { class: "app configured", "data-title": app.title }, form);
}

function addAppForm() {
  const fields = appFields({ title: "", command: [] });
  const status = el("span", { class: "meta", role: "status" });
  return el("form", {
    id: "add-app",
    class: "app-edit",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        const added = await api("/apps", "POST", edited(fields, {}));
        await saveArt(fields, added.id);
        status.textContent = "added";
        fields.title.value = fields.command.value = fields.art.value = "";
        await showApps();
      } catch (e) {
        status.textContent = e.message;
      }
    },
  }, fields.title, fields.command, fields.art, el("button", { type: "submit" }, "Add"), status);
}

document.getElementById("apps").append(el("h3", {}, "Add an app"), addAppForm());

// The host's health: `punktfunk doctor`'s checks.
async function showHealth() {
  const checks = await api("/doctor");
  document.getElementById("check-list").replaceChildren(...checks.map((check) =>
    el("li", { class: "check " + check.verdict }, el("span", { class: "verdict" }, check.verdict.toUpperCase()),
      el("span", { class: "name" }, check.name), el("span", { class: "meta" }, check.detail + (check.fix ? " — " + check.fix : "")))));
}

// The host's log: the latest lines, following new ones while scrolled to the end.
const LOG_LINES = 300;

function showLog(lines) {
  const pre = document.getElementById("log-lines");
  const following = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(...lines.map((l) => el("div", { class: "line", "data-seq": String(l.seq) }, l.line)));
  while (pre.childElementCount > LOG_LINES) pre.firstElementChild.remove();
  if (following) pre.scrollTop = pre.scrollHeight;
}

document.getElementById("recheck").addEventListener("click", () => showHealth().catch((e) => alertIn(document.getElementById("health"), e.message)));
// The catalog first: the clients' permission editors list its apps.
showApps().catch((e) => alertIn(document.getElementById("apps"), e.message)).finally(() => {
  const events = new EventSource("/api/v1/events");
  events.addEventListener("pairing", (e) => showPairing(JSON.parse(e.data).devices));
  events.addEventListener("clients", (e) => showClients(JSON.parse(e.data)));
  events.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  events.addEventListener("log", (e) => showLog(JSON.parse(e.data)));
  // The login ended (logged out elsewhere, a new password): the page shows the login form.
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) location.reload();
  });
});
showHealth().catch((e) => alertIn(document.getElementById("health"), e.message));
