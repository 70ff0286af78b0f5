// Minato registry web UI: plain DOM, no framework, no build step. Everything it shows comes from
// the browsing API (/api/v1). Routes live in the URL fragment:
//   #/                         repositories (?q=&sort=&order=&page=)
//   #/r/<name>                 a repository's tags (?sort=&order=&page=)
//   #/r/<name>/i/<reference>   an image
//   #/login                    log in (?next=<fragment>)

const API = "/api/v1";
const main = document.getElementById("main");
const account = document.getElementById("account");
/** `flash`: a message for the next page shown (e.g. after a delete). */
const state = { session: null, flash: null };

/** Builds an element: h("a", { href: "#/" }, "text", child…). Text is always set as text, never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { accept: "application/json", ...(options.headers ?? {}) };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.method && options.method !== "GET" && state.session?.csrfToken) headers["x-csrf-token"] = state.session.csrfToken;
  const res = await fetch(API + path, {
    method: options.method ?? "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: "same-origin",
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data.errors?.[0]?.message ?? `request failed (${res.status})`);
  return data;
}

// --- formatting ---

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
function bytes(n) {
  let i = 0;
  let value = n;
  while (value >= 1024 && i < UNITS.length - 1) {
    value /= 1024;
    i++;
  }
  return `${i === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[i]}`;
}
function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "never");
  const date = new Date(iso);
  return h(
    "time",
    { datetime: iso, title: date.toISOString() },
    date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }),
  );
}
const shortDigest = (digest) => digest.replace(/^sha256:/, "").slice(0, 12);
const platformName = (p) => [p.os, p.architecture, p.variant].filter(Boolean).join("/") || "unknown";
const repoHref = (name) => `#/r/${encodeURIComponent(name)}`;
const imageHref = (name, reference) => `${repoHref(name)}/i/${encodeURIComponent(reference)}`;
const apiRepo = (name) => `/repositories/${encodeURIComponent(name)}`;

function parseFragment() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}
function go(fragment) {
  if (location.hash === fragment) render();
  else location.hash = fragment;
}

// --- shared pieces ---

function show(title, ...content) {
  document.title = title ? `${title} · Minato registry` : "Minato registry";
  main.replaceChildren(...content);
  // Move focus to the new page so keyboard and screen reader users start at its top.
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function alertBox(message) {
  return h("p", { class: "alert", role: "alert" }, message);
}

function showError(error) {
  if (error instanceof ApiError && error.status === 401) {
    state.session = null;
    renderAccount();
    const next = location.hash.startsWith("#/login") ? "#/" : location.hash || "#/";
    go(`#/login?expired=1&next=${encodeURIComponent(next)}`);
    return;
  }
  show("Error", h("h1", {}, "Something went wrong"), alertBox(error.message), h("p", {}, h("a", { href: "#/" }, "Back to repositories")));
}

function table(caption, headers, rows, empty) {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "scroll" },
    h("table", {}, h("caption", { class: "sr-only" }, caption), h("thead", {}, h("tr", {}, headers)), h("tbody", {}, rows)),
  );
}

/** A column header; numeric columns align right like their cells. */
const columnHeader = (label) => h("th", { scope: "col", class: label === "Size" || label === "#" ? "num" : undefined }, label);

function pager(page, pageSize, total, hrefFor) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    page > 1 ? h("a", { href: hrefFor(page - 1), rel: "prev" }, "← Previous") : h("span", { class: "muted" }, "← Previous"),
    h("span", { "aria-live": "polite" }, `Page ${page} of ${pages} · ${total} in all`),
    page < pages ? h("a", { href: hrefFor(page + 1), rel: "next" }, "Next →") : h("span", { class: "muted" }, "Next →"),
  );
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select and copy";
  }
  button.dataset.copied = text;
  setTimeout(() => {
    button.textContent = "Copy";
  }, 2000);
}

function pullCommands(name, reference) {
  const host = location.host;
  const ref = reference.includes(":") ? `${host}/${name}@${reference}` : `${host}/${name}:${reference}`;
  const lines = [
    ["docker", `docker pull ${ref}`],
    ["podman", `podman pull ${ref}`],
    ["minato", `minato pull ${ref}`],
  ];
  return h(
    "section",
    { "aria-labelledby": "pull-heading" },
    h("h2", { id: "pull-heading" }, "Pull"),
    h(
      "ul",
      { class: "commands" },
      lines.map(([tool, line]) => {
        const button = h("button", { type: "button", "aria-label": `Copy the ${tool} pull command`, class: "copy" }, "Copy");
        button.addEventListener("click", () => copy(line, button));
        return h("li", {}, h("code", { id: `pull-${tool}` }, line), button);
      }),
    ),
  );
}

/** Asks before deleting, in a modal dialog (keyboard: Tab between the buttons, Escape cancels). */
function confirmDelete(what) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { "aria-labelledby": "confirm-title", class: "confirm" },
      h("h2", { id: "confirm-title" }, "Delete?"),
      h("p", {}, what),
      h(
        "form",
        { method: "dialog", class: "actions" },
        h("button", { value: "cancel", autofocus: true }, "Cancel"),
        h("button", { value: "delete", class: "danger" }, "Delete"),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "delete");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// --- account ---

function renderAccount() {
  const s = state.session;
  if (!s?.authRequired) {
    account.replaceChildren();
    return;
  }
  if (s.user) {
    const logout = h("button", { type: "button", class: "link" }, "Log out");
    logout.addEventListener("click", async () => {
      try {
        await api("/session", { method: "DELETE" });
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) return showError(error);
      }
      state.session = await api("/session");
      renderAccount();
      go("#/login?loggedout=1");
    });
    account.replaceChildren(h("span", { class: "user" }, `Logged in as ${s.user}`), logout);
  } else if (s.loginAvailable) {
    account.replaceChildren(h("a", { href: `#/login?next=${encodeURIComponent(location.hash || "#/")}` }, "Log in"));
  } else account.replaceChildren();
}

function loginPage(params) {
  const error = h("div", { id: "login-error" });
  if (params.get("expired")) error.append(alertBox("Your session has expired or you were logged out. Please log in again."));
  if (params.get("loggedout")) error.append(h("p", { role: "status" }, "You are logged out."));
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "login", "aria-describedby": "login-error" },
    h("label", { for: "username" }, "User name"),
    username,
    h("label", { for: "password" }, "Password or access token"),
    password,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      state.session = await api("/session", { method: "POST", body: { username: username.value, password: password.value } });
      renderAccount();
      const next = params.get("next");
      go(next?.startsWith("#/") && !next.startsWith("#/login") ? next : "#/");
    } catch (e) {
      error.replaceChildren(alertBox(e.status === 401 ? "Wrong user name or password." : e.message));
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  show("Log in", h("h1", {}, "Log in"), error, form, h("p", {}, h("a", { href: "#/" }, "Browse public repositories without logging in")));
  username.focus();
}

// --- pages ---

async function repositoriesPage(params) {
  const q = params.get("q") ?? "";
  const sort = params.get("sort") ?? "name";
  const order = params.get("order") ?? "";
  const page = Number(params.get("page") ?? 1) || 1;
  const query = new URLSearchParams({ sort, page: String(page), pageSize: "25" });
  if (q) query.set("q", q);
  if (order) query.set("order", order);
  const data = await api(`/repositories?${query}`);
  const hrefFor = (p) => `#/?${new URLSearchParams({ ...(q ? { q } : {}), sort, ...(order ? { order } : {}), page: String(p) })}`;

  const search = h("input", { id: "search", type: "search", name: "q", value: q, placeholder: "name contains…" });
  const sortSelect = h(
    "select",
    { id: "sort", name: "sort" },
    [
      ["name", "Name"],
      ["pushed", "Last push"],
      ["pulled", "Last pull"],
    ].map(([value, label]) => h("option", { value, selected: value === sort }, label)),
  );
  const form = h(
    "form",
    { class: "filters", role: "search" },
    h("label", { for: "search" }, "Search repositories"),
    search,
    h("label", { for: "sort" }, "Sort by"),
    sortSelect,
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(`#/?${new URLSearchParams({ ...(search.value ? { q: search.value } : {}), sort: sortSelect.value })}`);
  });
  const rows = data.items.map((r) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, h("a", { href: repoHref(r.name) }, r.name)),
      h("td", { class: "num" }, r.tagCount),
      h("td", { class: "num" }, bytes(r.size.total)),
      h("td", { class: "num opt" }, bytes(r.size.unique)),
      h("td", {}, when(r.lastPushedAt)),
      h("td", { class: "opt" }, when(r.lastPulledAt)),
    ),
  );
  const headers = ["Repository", "Tags", "Size", "Unique size", "Last push", "Last pull"].map((label, i) =>
    h("th", { scope: "col", class: [1, 2, 3].includes(i) ? `num${i === 3 ? " opt" : ""}` : i === 5 ? "opt" : undefined }, label),
  );
  show(
    "Repositories",
    h("h1", {}, "Repositories"),
    form,
    table("Repositories", headers, rows, q ? `No repository matches “${q}”.` : "No repositories to show."),
    data.total > 0 ? pager(page, 25, data.total, hrefFor) : null,
  );
}

async function tagsPage(name, params) {
  const sort = params.get("sort") ?? "name";
  const order = params.get("order") ?? (sort === "name" ? "asc" : "desc");
  const page = Number(params.get("page") ?? 1) || 1;
  const data = await api(`${apiRepo(name)}/tags?${new URLSearchParams({ sort, order, page: String(page), pageSize: "50" })}`);
  const hrefFor = (p, s = sort, o = order) => `${repoHref(name)}?${new URLSearchParams({ sort: s, order: o, page: String(p) })}`;
  const sortable = (label, key) => {
    const active = sort === key;
    const next = active && order === "asc" ? "desc" : active ? "asc" : key === "name" ? "asc" : "desc";
    return h(
      "th",
      { scope: "col", "aria-sort": active ? (order === "asc" ? "ascending" : "descending") : undefined },
      h("a", { href: hrefFor(1, key, next), class: "sort" }, label, active ? (order === "asc" ? " ▲" : " ▼") : ""),
    );
  };
  const flash = state.flash;
  state.flash = null;
  const rows = data.items.map((tag) => {
    const referrers = Object.entries(tag.referrers);
    const cells = [
      h("th", { scope: "row" }, h("a", { href: imageHref(name, tag.name) }, tag.name)),
      h("td", {}, h("code", { title: tag.digest }, shortDigest(tag.digest))),
      h("td", { class: "opt" }, tag.platforms.map(platformName).join(", ") || tag.artifactType || tag.kind),
      h("td", { class: "num" }, bytes(tag.size)),
      h("td", { class: "opt" }, when(tag.created)),
      h("td", {}, when(tag.pushedAt)),
      h("td", { class: "opt" }, when(tag.pulledAt)),
      h("td", { class: "opt" }, referrers.length ? referrers.map(([type, n]) => `${n} ${type || "untyped"}`).join(", ") : "—"),
    ];
    if (data.canDelete) {
      const remove = h("button", { type: "button", class: "danger small", "aria-label": `Delete tag ${tag.name}` }, "Delete");
      remove.addEventListener("click", () => deleteTag(name, tag.name));
      cells.push(h("td", {}, remove));
    }
    return h("tr", {}, cells);
  });
  const headers = [
    sortable("Tag", "name"),
    h("th", { scope: "col" }, "Digest"),
    h("th", { scope: "col", class: "opt" }, "Platforms"),
    h("th", { scope: "col", class: "num" }, "Size"),
    h("th", { scope: "col", class: "opt" }, "Created"),
    sortable("Pushed", "pushed"),
    h("th", { scope: "col", class: "opt" }, "Pulled"),
    h("th", { scope: "col", class: "opt" }, "Referrers"),
    data.canDelete ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")) : null,
  ];
  show(
    name,
    h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "#/" }, "Repositories"), " / "),
    h("h1", {}, name),
    h("div", { id: "status", role: "status" }, flash),
    table(`Tags of ${name}`, headers, rows, "This repository has no tags."),
    data.total > 0 ? pager(page, 50, data.total, (p) => hrefFor(p)) : null,
  );
}

async function deleteTag(name, tag) {
  if (!(await confirmDelete(`The tag ${name}:${tag} will be removed. The image stays available by digest.`))) return;
  try {
    await api(`${apiRepo(name)}/tags/${encodeURIComponent(tag)}`, { method: "DELETE" });
  } catch (error) {
    return showError(error);
  }
  state.flash = `Deleted tag ${tag}.`;
  go(repoHref(name));
}

async function deleteManifest(name, digest) {
  if (!(await confirmDelete(`The manifest ${digest} and every tag pointing at it will be removed from ${name}.`))) return;
  try {
    await api(`${apiRepo(name)}/manifests/${encodeURIComponent(digest)}`, { method: "DELETE" });
  } catch (error) {
    return showError(error);
  }
  go(repoHref(name));
}

function definitions(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, value]) => value !== undefined).flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

const list = (values) => (values?.length ? h("code", {}, JSON.stringify(values)) : h("span", { class: "muted" }, "none"));

async function imagePage(name, reference) {
  const image = await api(`${apiRepo(name)}/images/${encodeURIComponent(reference)}`);
  const c = image.config;
  const sections = [
    h(
      "nav",
      { "aria-label": "Breadcrumb", class: "crumbs" },
      h("a", { href: "#/" }, "Repositories"),
      " / ",
      h("a", { href: repoHref(name) }, name),
      " / ",
    ),
    h("h1", {}, `${name}${reference.includes(":") ? "@" : ":"}${reference}`),
    definitions([
      ["Digest", h("code", {}, image.digest)],
      ["Kind", image.artifactType ? `${image.kind} (${image.artifactType})` : image.kind],
      ["Media type", image.mediaType],
      ["Size", `${bytes(image.size)} (${image.size.toLocaleString()} bytes)`],
      ["Created", when(image.created)],
      ["Pushed", when(image.pushedAt)],
      ["Pulled", when(image.pulledAt)],
    ]),
    pullCommands(name, reference),
  ];
  if (image.kind === "index") {
    sections.push(
      h("h2", {}, "Platforms"),
      table(
        "Platforms",
        ["Platform", "Digest", "Size"].map(columnHeader),
        image.platforms.map((p) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, h("a", { href: imageHref(name, p.digest) }, platformName(p))),
            h("td", {}, h("code", { title: p.digest }, shortDigest(p.digest))),
            h("td", { class: "num" }, bytes(p.size)),
          ),
        ),
        "No platforms.",
      ),
    );
  }
  if (c) {
    sections.push(
      h("h2", {}, "Configuration"),
      definitions([
        ["Platform", platformName(c)],
        ["Entrypoint", list(c.entrypoint)],
        ["Command", list(c.cmd)],
        ["User", c.user ?? h("span", { class: "muted" }, "default (root)")],
        ["Working directory", c.workingDir ?? h("span", { class: "muted" }, "/")],
        ["Exposed ports", c.exposedPorts.length ? c.exposedPorts.join(", ") : h("span", { class: "muted" }, "none")],
        [
          "Environment",
          c.env.length
            ? h(
                "ul",
                { class: "plain" },
                c.env.map((e) => h("li", {}, h("code", {}, e))),
              )
            : h("span", { class: "muted" }, "none"),
        ],
        [
          "Labels",
          Object.keys(c.labels).length
            ? h(
                "ul",
                { class: "plain" },
                Object.entries(c.labels).map(([k, v]) => h("li", {}, h("code", {}, `${k}=${v}`))),
              )
            : h("span", { class: "muted" }, "none"),
        ],
      ]),
    );
  }
  if (image.layers.length) {
    sections.push(
      h("h2", {}, "Layers"),
      table(
        "Layers",
        ["#", "Digest", "Size", "Created by"].map(columnHeader),
        image.layers.map((layer, i) =>
          h(
            "tr",
            {},
            h("td", { class: "num" }, i + 1),
            h("td", {}, h("code", { title: layer.digest }, shortDigest(layer.digest))),
            h("td", { class: "num" }, bytes(layer.size)),
            h("td", { class: "step" }, layer.createdBy ? h("code", {}, layer.createdBy) : h("span", { class: "muted" }, "unknown")),
          ),
        ),
        "No layers.",
      ),
    );
  }
  if (c?.history.length) {
    sections.push(
      h("h2", {}, "History"),
      h(
        "ol",
        { class: "history" },
        c.history.map((entry) =>
          h(
            "li",
            {},
            h("code", {}, entry.createdBy ?? "(no command)"),
            entry.emptyLayer ? h("span", { class: "muted" }, " — no layer") : null,
            " ",
            when(entry.created),
          ),
        ),
      ),
    );
  }
  sections.push(
    h("h2", {}, "Referrers"),
    table(
      "Referrers",
      ["Artifact type", "Digest", "Size"].map(columnHeader),
      image.referrers.map((r) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, r.artifactType ?? r.mediaType),
          h("td", {}, h("a", { href: imageHref(name, r.digest) }, h("code", { title: r.digest }, shortDigest(r.digest)))),
          h("td", { class: "num" }, bytes(r.size)),
        ),
      ),
      "No signatures, SBOMs or other referrers.",
    ),
    h("details", {}, h("summary", {}, "Manifest"), h("pre", {}, JSON.stringify(image.manifest, null, 2))),
  );
  if (image.canDelete) {
    const remove = h("button", { type: "button", class: "danger" }, "Delete this manifest");
    remove.addEventListener("click", () => deleteManifest(name, image.digest));
    const removeTag = reference.includes(":") ? null : h("button", { type: "button", class: "danger" }, `Delete tag ${reference}`);
    removeTag?.addEventListener("click", () => deleteTag(name, reference));
    sections.push(h("div", { class: "actions" }, removeTag, remove));
  }
  show(`${name}:${reference}`, ...sections);
}

// --- router ---

async function render() {
  const { parts, params } = parseFragment();
  try {
    state.session ??= await api("/session");
    renderAccount();
    if (parts[0] === "login") return loginPage(params);
    const s = state.session;
    // With authentication on, someone not logged in starts at the login page (public repositories stay one click away).
    if (
      s.authRequired &&
      !s.user &&
      s.loginAvailable &&
      parts.length === 0 &&
      !params.has("public") &&
      !sessionStorage.getItem("anonymous")
    ) {
      return loginPage(new URLSearchParams({ next: "#/" }));
    }
    if (parts[0] === "r" && parts[1] && parts[2] === "i" && parts[3]) return await imagePage(parts[1], parts[3]);
    if (parts[0] === "r" && parts[1]) return await tagsPage(parts[1], params);
    return await repositoriesPage(params);
  } catch (error) {
    showError(error);
  }
}

main.addEventListener("click", (event) => {
  // "Browse public repositories" remembers the choice for this tab.
  const link = event.target.closest?.("a[href='#/']");
  if (link && document.querySelector("form.login")) sessionStorage.setItem("anonymous", "1");
});
window.addEventListener("hashchange", render);
render();
