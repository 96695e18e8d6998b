// The home-delivery tablet app: pair the device, load the route, verify and pay people
// at home (also offline), record visits, and sync the queue with the terminal.
import { ApiError, call, syncQueue } from "./api.js";
import { applyStatic, getLang, setLang, t } from "./i18n.js";
import * as store from "./store.js";
import { cameraAvailable, startScan } from "./camera.js";
import { drawQr } from "./qr.js";
import { signaturePad } from "./signature.js";
import { cleanIdNumber, matchCollector, parseCccdQr } from "./verify.js";
import { clientRef, date, dateTime, fold, h, localIso, money, period, todayIso } from "./util.js";

const SYNC_EVERY_MS = 60000;
const POSITION_WAIT_MS = 3000;

const state = {
  token: null,
  device: null,
  route: null,
  people: [], // the route's people, in the server's order
  queue: [],
  history: [],
  query: "",
  screen: null, // {name, ...}: the screen shown, so a sync can redraw it
  syncing: false,
  stopCamera: null,
};

const view = () => document.getElementById("view");

// ---------------------------------------------------------------------------
// Derived facts

function personByCode(code) {
  return state.people.find((p) => p.code === code) || null;
}

/** Entitlements this tablet handed money for (queued or answered, whatever the answer): never pay them again. */
function paidHere() {
  const ids = new Set();
  for (const item of [...state.queue, ...state.history]) {
    if (item.kind === "payout") item.body.entitlement_ids.forEach((id) => ids.add(id));
  }
  return ids;
}

function dueOf(person, paid = paidHere()) {
  return (person.entitlements || []).filter((e) => !paid.has(e.id));
}

function total(entitlements) {
  return entitlements.reduce((sum, e) => sum + Number(e.amount), 0);
}

function itemsOf(code) {
  const mine = (item) => item.code === code;
  const queued = state.queue.filter(mine).map((item) => ({ ...item, queued: true }));
  const answered = state.history.filter(mine);
  return [...queued, ...answered].sort((a, b) => b.seq - a.seq);
}

function proxyExpired(proxy) {
  return Boolean(proxy.valid_until) && proxy.valid_until < todayIso();
}

function proxyNotYet(proxy) {
  return Boolean(proxy.valid_from) && proxy.valid_from > todayIso();
}

function reportedDead(code) {
  return itemsOf(code).some(
    (item) => item.kind === "visit" && item.body.outcome === "deceased" && (!item.result || item.result.status !== "rejected")
  );
}

/** The person's state for the list: due, queued, paid, flagged, visited. */
function statusOf(person, paid) {
  const items = itemsOf(person.code);
  const payouts = items.filter((item) => item.kind === "payout");
  if (payouts.some((item) => item.result && item.result.status === "conflict")) return "conflict";
  if (payouts.some((item) => item.result && item.result.status === "rejected")) return "rejected";
  if (dueOf(person, paid).length === 0 && payouts.length) {
    return payouts.some((item) => item.queued) ? "queued" : "synced";
  }
  if (reportedDead(person.code)) return "deceased";
  const visit = items.find((item) => item.kind === "visit");
  if (visit) return `visit-${visit.body.outcome}`;
  return dueOf(person, paid).length ? "due" : "nothing";
}

// ---------------------------------------------------------------------------
// Loading state and the header

async function reload() {
  state.token = (await store.getMeta("token")) || null;
  state.device = (await store.getMeta("device")) || null;
  state.route = (await store.getMeta("route")) || null;
  state.people = state.route ? (await store.all(store.PEOPLE)).sort((a, b) => a.order - b.order) : [];
  state.queue = await store.all(store.QUEUE);
  state.history = await store.all(store.HISTORY);
  renderHeader();
}

function renderHeader() {
  const count = state.queue.length;
  const counter = document.querySelector("[data-testid=queue-count]");
  counter.classList.toggle("waiting", count > 0);
  document.querySelector("[data-testid=queue-number]").textContent = String(count);
  const online = navigator.onLine;
  const net = document.querySelector("[data-testid=net-state]");
  net.textContent = online ? t("online") : t("offline");
  net.classList.toggle("off", !online);
  const who = document.querySelector("[data-testid=device-owner]");
  who.textContent = state.device ? `${state.device.user.full_name} · ${state.device.point.code}` : "";
  const sync = document.querySelector("[data-testid=sync]");
  sync.disabled = state.syncing;
  sync.textContent = state.syncing ? t("syncing") : t("sync");
  document.querySelector("[data-testid=lang-toggle]").textContent = getLang() === "vi" ? "English" : "Tiếng Việt";
}

/** Show a message above the screen: kind is ok, info, warn or error. */
function banner(kind, text, testid = "banner") {
  const area = document.getElementById("banners");
  area.replaceChildren(
    h("div", { class: `banner ${kind}`, role: kind === "error" ? "alert" : "status", testid }, text)
  );
}

function clearBanner() {
  document.getElementById("banners").replaceChildren();
}

// ---------------------------------------------------------------------------
// Screens

function show(screen) {
  if (state.stopCamera) {
    state.stopCamera();
    state.stopCamera = null;
  }
  state.screen = screen;
  clearBanner(); // a message belongs to the screen it was said on
  const renderers = {
    pair: renderPair,
    route: renderRoute,
    person: renderPerson,
    verify: renderVerify,
    pay: renderPay,
    receipt: renderReceipt,
    queue: renderQueue,
    device: renderDevice,
  };
  view().replaceChildren(renderers[screen.name](screen));
  document.body.dataset.screen = screen.name;
  window.scrollTo(0, 0);
}

/** Redraw the current screen after the data changed (not the forms being filled). */
function refresh() {
  renderHeader();
  const name = state.screen && state.screen.name;
  if (name === "route" || name === "person" || name === "queue" || name === "device" || name === "receipt") {
    const banners = [...document.getElementById("banners").childNodes];
    const scroll = window.scrollY;
    // What was being typed (a visit's note, the search) survives the redraw.
    const typed = [...view().querySelectorAll("input[id], textarea[id]")].map((el) => [el.id, el.value]);
    const focused = document.activeElement && document.activeElement.id;
    show(state.screen);
    for (const [id, value] of typed) {
      const el = document.getElementById(id);
      if (el && el.value !== value) {
        el.value = value;
        el.dispatchEvent(new Event("input"));
      }
    }
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    document.getElementById("banners").replaceChildren(...banners);
    window.scrollTo(0, scroll);
  }
}

function home() {
  if (!state.token) show({ name: "pair" });
  else show({ name: "route" });
}

function backButton(label, onclick, testid = "back") {
  return h("button", { class: "back", type: "button", testid, onclick }, `← ${label}`);
}

function renderPair() {
  const input = h("textarea", {
    id: "pair-token",
    rows: 3,
    testid: "pair-token",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
  });
  const error = h("p", { class: "error", testid: "pair-error", role: "alert" });
  const submit = h("button", { class: "primary big", type: "submit", testid: "pair-submit" }, t("pair.submit"));
  const form = h(
    "form",
    { class: "card stack", testid: "pair-form" },
    h("h1", {}, t("pair.title")),
    h("p", { class: "lead" }, t("pair.explain")),
    h("div", { class: "field" }, h("label", { for: "pair-token" }, t("pair.label")), input),
    error,
    submit
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = tokenFrom(input.value);
    if (!token) {
      error.textContent = t("pair.bad");
      return;
    }
    submit.disabled = true;
    error.textContent = "";
    await pair(token, (message) => (error.textContent = message));
    submit.disabled = false;
  });
  const parts = [form];
  if (state.queue.length) {
    parts.push(h("p", { class: "card warn-box", testid: "pair-queue-kept" }, t("pair.queueKept", { n: state.queue.length })));
  }
  return h("section", { class: "screen" }, ...parts);
}

/** Accept a bare token or a pasted pairing link (…/tablet/#pair=TOKEN). */
function tokenFrom(text) {
  const value = String(text || "").trim();
  const link = /#pair=([^&\s]+)/.exec(value);
  const token = link ? decodeURIComponent(link[1]) : value;
  return /^[A-Za-z0-9._~+/=-]{16,512}$/.test(token) ? token : null;
}

function renderRoute() {
  const screen = h("section", { class: "screen", testid: "route-screen" });
  if (!state.route) {
    screen.append(
      h(
        "div",
        { class: "card stack", testid: "no-route" },
        h("h1", {}, t("route.none")),
        h("p", { class: "lead" }, t("route.noneExplain")),
        h("button", { class: "primary big", type: "button", testid: "route-load", onclick: loadRoute }, t("route.load"))
      ),
      routeTools()
    );
    return screen;
  }
  const route = state.route;
  const paid = paidHere();
  screen.append(
    h(
      "div",
      { class: "route-head" },
      h("h1", {}, t("route.title", { period: period(route.period) })),
      h(
        "p",
        { class: "lead", testid: "route-summary" },
        t("route.summary", { n: state.people.length, date: date(route.expires_at) })
      )
    )
  );
  const search = h("input", {
    type: "search",
    id: "route-search",
    testid: "route-search",
    placeholder: t("route.search"),
    autocomplete: "off",
    value: state.query,
  });
  screen.append(h("div", { class: "field search" }, h("label", { for: "route-search", class: "sr-only" }, t("route.search")), search));
  const list = h("div", { class: "villages", testid: "village-list" });
  const fill = () => {
    const q = fold(search.value);
    state.query = search.value;
    // Villages are named within their commune ("Thôn 3" exists in many): group by both.
    const communes = new Set(state.people.map((p) => p.commune || ""));
    const groups = new Map();
    for (const person of state.people) {
      if (q && !person._fold.includes(q)) continue;
      const village = person.village || t("route.noVillage");
      const key = communes.size > 1 && person.commune ? `${village} · ${person.commune}` : village;
      if (!groups.has(key)) groups.set(key, { sort: `${person.commune || ""}\u0000${village}`, people: [] });
      groups.get(key).people.push(person);
    }
    const order = (a, b) => a[1].sort.localeCompare(b[1].sort, "vi", { numeric: true });
    const sections = [];
    for (const [village, { people }] of [...groups.entries()].sort(order)) {
      const waiting = people.filter((p) => dueOf(p, paid).length && statusOf(p, paid) !== "deceased").length;
      sections.push(
        h(
          "section",
          { class: "village", testid: "village", dataset: { village } },
          h(
            "h2",
            {},
            h("span", { class: "village-name" }, village),
            h("span", { class: "count", testid: "village-count" }, t("route.villageCount", { n: people.length, due: waiting }))
          ),
          h("ul", { class: "people" }, ...people.map((p) => personRow(p, paid)))
        )
      );
    }
    if (!sections.length) sections.push(h("p", { class: "lead empty", testid: "route-empty" }, t("route.noMatch")));
    list.replaceChildren(...sections);
  };
  search.addEventListener("input", fill);
  fill();
  screen.append(list, routeTools());
  return screen;
}

function routeTools() {
  return h(
    "div",
    { class: "tools" },
    h("button", { type: "button", testid: "route-reload", onclick: loadRoute }, t("route.reload")),
    h("button", { type: "button", testid: "open-queue", onclick: () => show({ name: "queue" }) }, t("queue.open")),
    h("button", { type: "button", testid: "open-device", onclick: () => show({ name: "device" }) }, t("device.open"))
  );
}

function personRow(person, paid) {
  const status = statusOf(person, paid);
  const due = dueOf(person, paid);
  return h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        class: `person-row status-${status}`,
        testid: "person-row",
        dataset: { code: person.code },
        onclick: () => show({ name: "person", code: person.code }),
      },
      h(
        "span",
        { class: "who" },
        h("span", { class: "name" }, person.full_name),
        h("span", { class: "meta" }, `${t("person.born")} ${person.year_of_birth || "?"} · ${person.code}`)
      ),
      h(
        "span",
        { class: "what" },
        due.length ? h("span", { class: "amount" }, money(total(due))) : null,
        h("span", { class: `chip ${status}`, testid: "person-status" }, t(`status.${status}`))
      )
    )
  );
}

function renderPerson({ code }) {
  const person = personByCode(code);
  if (!person) return notOnRoute();
  const paid = paidHere();
  const due = dueOf(person, paid);
  const screen = h("section", { class: "screen", testid: "person-screen" });
  screen.append(
    backButton(t("back.list"), () => show({ name: "route" })),
    h(
      "div",
      { class: "card" },
      h("h1", { testid: "person-name" }, person.full_name),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("person.born")),
        h("dd", { testid: "person-born" }, person.year_of_birth || "—"),
        h("dt", {}, t("person.code")),
        h("dd", {}, person.code),
        h("dt", {}, t("person.village")),
        h("dd", {}, [person.village, person.commune].filter(Boolean).join(", ") || "—"),
        h("dt", {}, t("person.address")),
        h("dd", {}, person.address || "—")
      )
    )
  );

  const dueCard = h("div", { class: "card", testid: "entitlements" }, h("h2", {}, t("person.due")));
  if (due.length) {
    dueCard.append(
      h(
        "table",
        { class: "amounts" },
        h("tbody", {}, ...due.map((e) => h("tr", {}, h("td", {}, t("person.period", { p: period(e.period) })), h("td", { class: "num" }, money(e.amount))))),
        h("tfoot", {}, h("tr", {}, h("th", {}, t("person.total")), h("th", { class: "num", testid: "person-total" }, money(total(due)))))
      )
    );
  } else {
    dueCard.append(h("p", { class: "lead", testid: "nothing-due" }, t("person.nothingDue")));
  }
  screen.append(dueCard);

  if ((person.proxies || []).length) {
    screen.append(
      h(
        "div",
        { class: "card", testid: "proxies" },
        h("h2", {}, t("person.proxies")),
        h(
          "ul",
          { class: "proxies" },
          ...person.proxies.map((proxy) =>
            h(
              "li",
              { class: proxyExpired(proxy) ? "expired" : "" },
              h("strong", {}, proxy.full_name),
              ` (${proxy.relationship || t("proxy.noRelation")}) — `,
              proxy.valid_until
                ? proxyExpired(proxy)
                  ? h("span", { class: "bad" }, t("proxy.expiredOn", { date: date(proxy.valid_until) }))
                  : t("proxy.validUntil", { date: date(proxy.valid_until) })
                : t("proxy.noEnd")
            )
          )
        )
      )
    );
  }

  const actions = h("div", { class: "card stack", testid: "person-actions" });
  if (reportedDead(code)) {
    actions.append(h("p", { class: "warn-box" }, t("person.dead")));
  } else if (due.length) {
    if (!canVerifyOffline(person)) {
      actions.append(h("p", { class: "warn-box", testid: "no-id" }, t("person.noId")));
    } else {
      actions.append(
        h(
          "button",
          { class: "primary big", type: "button", testid: "start-verify", onclick: () => show({ name: "verify", code }) },
          t("person.verifyPay")
        )
      );
      if (!person.id_hash) actions.append(h("p", { class: "warn-box", testid: "no-id-self" }, t("person.noIdSelf")));
    }
  }
  actions.append(visitForm(person));
  // What happened here first (a receipt, a case for the supervisor), then what can be done.
  if (itemsOf(code).length) screen.insertBefore(historyCard(code), dueCard);
  screen.append(actions);
  askPosition(); // ready for a visit recorded from this card
  return screen;
}

function canVerifyOffline(person) {
  return Boolean(person.id_hash) || (person.proxies || []).some((p) => p.id_hash && !proxyExpired(p) && !proxyNotYet(p));
}

function notOnRoute() {
  return h(
    "section",
    { class: "screen" },
    backButton(t("back.list"), () => show({ name: "route" })),
    h("p", { class: "card lead" }, t("person.gone"))
  );
}

function visitForm(person) {
  const note = h("input", { type: "text", id: "visit-note", testid: "visit-note", maxlength: 500, autocomplete: "off" });
  const record = (outcome) => async (event) => {
    event.currentTarget.disabled = true;
    await recordVisit(person, outcome, note.value.trim());
  };
  return h(
    "div",
    { class: "visit" },
    h("h2", {}, t("visit.title")),
    h("div", { class: "field" }, h("label", { for: "visit-note" }, t("visit.note")), note),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", testid: "visit-absent", onclick: record("absent") }, t("visit.absent")),
      h("button", { type: "button", testid: "visit-refused", onclick: record("refused") }, t("visit.refused")),
      h("button", { type: "button", class: "danger", testid: "visit-deceased", onclick: record("deceased") }, t("visit.deceased"))
    )
  );
}

function historyCard(code) {
  const items = itemsOf(code);
  const card = h("div", { class: "card", testid: "person-history" }, h("h2", {}, t("history.title")));
  if (!items.length) {
    card.append(h("p", { class: "muted-strong" }, t("history.none")));
    return card;
  }
  card.append(h("ul", { class: "history" }, ...items.map((item) => historyItem(item, true))));
  return card;
}

/** One payout or visit, queued or answered, as a list item (with its receipt QR when asked). */
function historyItem(item, withQr = false) {
  const result = item.result || null;
  const status = item.queued || !result ? "queued" : result.status;
  const li = h("li", { class: `item ${item.kind} ${status}`, testid: `item-${status}`, dataset: { ref: item.client_ref } });
  if (item.kind === "payout") {
    li.append(
      h("div", { class: "line" }, h("strong", {}, money(item.display.amount)), " · ", item.display.full_name, " · ", dateTime(item.body.paid_at)),
      h("div", { class: "sub" }, t("history.collector", { name: item.display.collector }), " · ", item.display.periods.map(period).join(", "))
    );
  } else {
    li.append(
      h("div", { class: "line" }, h("strong", {}, t(`visit.${item.body.outcome}`)), " · ", item.display.full_name, " · ", dateTime(item.body.at)),
      item.body.note ? h("div", { class: "sub" }, item.body.note) : null
    );
  }
  li.append(h("div", { class: `state ${status}`, testid: "item-state" }, stateText(item, status)));
  if (item.kind === "payout" && withQr) {
    if (status === "applied" || status === "duplicate") {
      if (result.receipt_verify_url) {
        li.append(drawQr(h("canvas", { class: "qr", testid: "receipt-verify-qr" }), result.receipt_verify_url, 220));
      }
      li.append(
        h("button", { type: "button", testid: "show-receipt", onclick: () => show({ name: "receipt", ref: item.client_ref }) }, t("history.receipt"))
      );
    } else if (status === "queued") {
      li.append(
        h("button", { type: "button", testid: "show-temp-receipt", onclick: () => show({ name: "receipt", ref: item.client_ref }) }, t("history.tempReceipt"))
      );
    }
  }
  return li;
}

function stateText(item, status) {
  const result = item.result || {};
  if (status === "queued") return t("state.queued");
  if (item.kind === "visit") {
    if (status === "rejected") return `${t("state.rejected")}: ${result.message || result.error || ""}${caseText(result)}`;
    return result.case ? `${t("state.visitDone")} ${t("visit.toldPostOffice")}` : t("state.visitDone");
  }
  if (status === "applied" || status === "duplicate") {
    return h("span", {}, t("state.synced"), " ", h("strong", { testid: "receipt-no" }, result.receipt_no || ""));
  }
  if (status === "conflict") return `${t("state.conflict")}${caseText(result)}`;
  if (status === "rejected") return `${t("state.rejected")}: ${result.message || result.error || ""}${caseText(result)}`;
  return status;
}

function caseText(result) {
  return result.failure_id ? ` (${t("state.case", { id: result.failure_id })})` : "";
}

// ---------------------------------------------------------------------------
// Verify, pay, receipt

function collectorsOf(person) {
  const list = [
    {
      key: "beneficiary",
      kind: "beneficiary",
      name: person.full_name,
      label: t("verify.self"),
      id_hash: person.id_hash,
      refusal: person.id_hash ? null : t("verify.noIdOnFile"),
    },
  ];
  for (const proxy of person.proxies || []) {
    let refusal = null;
    if (proxyExpired(proxy)) refusal = t("verify.proxyExpired", { date: date(proxy.valid_until) });
    else if (proxyNotYet(proxy)) refusal = t("verify.proxyNotYet", { date: date(proxy.valid_from) });
    else if (!proxy.id_hash) refusal = t("verify.noIdOnFile");
    list.push({
      key: `proxy-${proxy.id}`,
      kind: "proxy",
      proxy_id: proxy.id,
      name: proxy.full_name,
      label: `${t("verify.proxy")} (${proxy.relationship || t("proxy.noRelation")})`,
      id_hash: proxy.id_hash,
      refusal,
    });
  }
  return list;
}

function renderVerify({ code }) {
  const person = personByCode(code);
  if (!person) return notOnRoute();
  const collectors = collectorsOf(person);
  let chosen = collectors.find((c) => !c.refusal) || null;
  const error = h("p", { class: "error big-error", role: "alert", testid: "verify-error" });
  const fail = (text) => {
    error.textContent = text;
  };

  const choices = h("div", { class: "choices", role: "radiogroup" });
  const drawChoices = () => {
    choices.replaceChildren(
      ...collectors.map((c) =>
        h(
          "button",
          {
            type: "button",
            role: "radio",
            "aria-checked": chosen === c ? "true" : "false",
            class: `choice${chosen === c ? " chosen" : ""}${c.refusal ? " refused" : ""}`,
            testid: c.kind === "beneficiary" ? "collector-beneficiary" : "collector-proxy",
            dataset: { key: c.key },
            onclick: () => {
              if (c.refusal) {
                fail(`${c.name}: ${c.refusal}`);
                return;
              }
              chosen = c;
              fail("");
              drawChoices();
            },
          },
          h("span", { class: "name" }, c.name),
          h("span", { class: "meta" }, c.label),
          c.refusal ? h("span", { class: "bad", testid: "collector-refusal" }, c.refusal) : null
        )
      )
    );
  };
  drawChoices();

  const succeed = (verifiedBy) => show({ name: "pay", code, collector: chosen.key, verified_by: verifiedBy });
  const check = async (numbers, verifiedBy) => {
    if (!chosen) {
      fail(t("verify.nobody"));
      return;
    }
    const hit = await matchCollector(state.route.salt, numbers, collectors.filter((c) => c.id_hash));
    if (hit === chosen.key) {
      succeed(verifiedBy);
      return;
    }
    const other = collectors.find((c) => c.key === hit);
    if (other && !other.refusal) fail(t("verify.otherPerson", { name: other.name }));
    else if (other) fail(`${other.name}: ${other.refusal}`);
    else fail(t("verify.mismatch"));
  };

  const idInput = h("input", {
    type: "text",
    inputmode: "numeric",
    id: "verify-id",
    testid: "verify-id",
    autocomplete: "off",
    maxlength: 20,
  });
  const idForm = h(
    "form",
    { class: "method", testid: "verify-id-form" },
    h("h2", {}, t("verify.byId")),
    h("div", { class: "field" }, h("label", { for: "verify-id" }, t("verify.idLabel")), idInput),
    h("button", { class: "primary", type: "submit", testid: "verify-id-submit" }, t("verify.check"))
  );
  idForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const number = cleanIdNumber(idInput.value);
    if (!number) {
      fail(t("verify.idFormat"));
      return;
    }
    await check([number], "id_number");
  });

  const checkQr = async (text) => {
    const card = parseCccdQr(text);
    if (!card) {
      fail(t("verify.qrUnreadable"));
      return;
    }
    await check([card.cccd, card.cmnd].filter(Boolean), "id_qr");
  };

  const qrInput = h("input", { type: "text", id: "verify-qr", testid: "verify-qr", autocomplete: "off" });
  const qrForm = h(
    "form",
    { class: "method", testid: "verify-qr-form" },
    h("div", { class: "field" }, h("label", { for: "verify-qr" }, t("verify.qrLabel")), qrInput),
    h("button", { type: "submit", testid: "verify-qr-submit" }, t("verify.check"))
  );
  qrForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    await checkQr(qrInput.value);
  });

  const video = h("video", { class: "camera", testid: "camera-video", muted: true, playsinline: true, hidden: true });
  const camStatus = h("p", { class: "lead", testid: "camera-status" });
  const scanButton = h("button", { type: "button", class: "primary", testid: "scan-start" }, t("verify.scan"));
  scanButton.addEventListener("click", async () => {
    if (state.stopCamera) {
      state.stopCamera();
      state.stopCamera = null;
      video.hidden = true;
      scanButton.textContent = t("verify.scan");
      camStatus.textContent = "";
      return;
    }
    if (!cameraAvailable()) {
      fail(t("verify.noCamera"));
      return;
    }
    fail("");
    try {
      video.hidden = false;
      camStatus.textContent = t("verify.scanning");
      scanButton.textContent = t("verify.scanStop");
      state.stopCamera = await startScan(video, (text) => {
        state.stopCamera = null;
        video.hidden = true;
        scanButton.textContent = t("verify.scan");
        camStatus.textContent = t("verify.qrRead");
        checkQr(text);
      });
    } catch (_err) {
      video.hidden = true;
      scanButton.textContent = t("verify.scan");
      camStatus.textContent = "";
      fail(t("verify.cameraRefused"));
    }
  });
  const camera = h("div", { class: "method", testid: "verify-camera" }, h("h2", {}, t("verify.byQr")), scanButton, camStatus, video, qrForm);

  return h(
    "section",
    { class: "screen", testid: "verify-screen" },
    backButton(t("back.person"), () => show({ name: "person", code })),
    h("h1", {}, t("verify.title")),
    h("p", { class: "lead" }, t("verify.for", { name: person.full_name })),
    h("div", { class: "card" }, h("h2", {}, t("verify.who")), choices),
    error,
    h("div", { class: "card stack" }, idForm, camera),
    h("p", { class: "note" }, t("verify.faceNote"))
  );
}

function renderPay({ code, collector: key, verified_by: verifiedBy }) {
  const person = personByCode(code);
  if (!person) return notOnRoute();
  const collector = collectorsOf(person).find((c) => c.key === key);
  const due = dueOf(person);
  if (!due.length) {
    return h("section", { class: "screen" }, backButton(t("back.person"), () => show({ name: "person", code })), h("p", { class: "card lead" }, t("person.nothingDue")));
  }
  const amount = total(due);
  const canvas = h("canvas", { class: "signature", testid: "signature-pad", "aria-label": t("pay.signature") });
  const error = h("p", { class: "error big-error", role: "alert", testid: "pay-error" });
  const where = h("p", { class: "position", testid: "pay-position" }, t("pay.positionWait"));
  const confirm = h("button", { class: "primary huge", type: "button", testid: "pay-confirm" }, t("pay.confirm"));
  let position = null;

  const screen = h(
    "section",
    { class: "screen", testid: "pay-screen" },
    backButton(t("back.person"), () => show({ name: "person", code })),
    h("h1", {}, t("pay.title")),
    h(
      "div",
      { class: "card pay-sum" },
      h("p", { class: "label" }, t("pay.amount")),
      h("p", { class: "total", testid: "pay-total" }, money(amount)),
      h("p", { class: "lead" }, due.map((e) => t("person.period", { p: period(e.period) })).join(" · ")),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("pay.beneficiary")),
        h("dd", {}, person.full_name),
        h("dt", {}, t("pay.collector")),
        h("dd", { testid: "pay-collector" }, `${collector.name} — ${collector.label}`),
        h("dt", {}, t("pay.verifiedBy")),
        h("dd", {}, t(`verify.by.${verifiedBy}`))
      )
    ),
    h(
      "div",
      { class: "card" },
      h("h2", {}, t("pay.signature")),
      h("p", {}, t("pay.signHere", { name: collector.name })),
      canvas,
      h("div", { class: "row" }, h("button", { type: "button", testid: "signature-clear", onclick: () => pad.clear() }, t("pay.clear"))),
      where
    ),
    error,
    h("div", { class: "row end" }, h("button", { type: "button", testid: "pay-cancel", onclick: () => show({ name: "person", code }) }, t("pay.cancel")), confirm)
  );
  // The pad measures the canvas: attach it once the screen is in the page.
  let pad = null;
  requestAnimationFrame(() => {
    pad = signaturePad(canvas);
    canvas.addEventListener("signature-change", () => {
      if (!pad.isEmpty()) error.textContent = "";
    });
  });
  askPosition((found) => {
    position = found;
    where.textContent = found ? t("pay.positionOk") : t("pay.positionNone");
  });

  confirm.addEventListener("click", async () => {
    if (!pad || pad.isEmpty()) {
      error.textContent = t("pay.needSignature");
      return;
    }
    confirm.disabled = true;
    try {
      const item = await recordPayout(person, collector, verifiedBy, pad.toPngBase64(), position);
      show({ name: "receipt", ref: item.client_ref, fresh: true });
    } catch (err) {
      confirm.disabled = false;
      error.textContent = err && err.message === "already_paid" ? t("pay.alreadyPaid") : t("pay.storeFailed");
    }
  });
  return screen;
}

let lastPosition = null; // {lat, lon, at}: the latest the device gave

/** Ask for the position without ever waiting on it: at most 3 s, and optional. */
function askPosition(done = () => {}) {
  let answered = false;
  const answer = (value) => {
    if (value) lastPosition = { ...value, at: Date.now() };
    if (!answered || value) done(value);
    answered = true;
  };
  if (!navigator.geolocation) {
    answer(null);
    return;
  }
  setTimeout(() => answer(null), POSITION_WAIT_MS);
  try {
    navigator.geolocation.getCurrentPosition(
      (pos) => answer({ lat: Number(pos.coords.latitude.toFixed(6)), lon: Number(pos.coords.longitude.toFixed(6)) }),
      () => answer(null),
      { enableHighAccuracy: false, timeout: POSITION_WAIT_MS, maximumAge: 120000 }
    );
  } catch (_err) {
    answer(null);
  }
}

/** The position of a few minutes ago at most, or null: a visit is never held up for it. */
function recentPosition() {
  if (!lastPosition || Date.now() - lastPosition.at > 10 * 60000) return null;
  return { lat: lastPosition.lat, lon: lastPosition.lon };
}

let lastSeq = 0;
function nextSeq() {
  // Items keep the order they were made in, across reloads (a clock step back included).
  lastSeq = Math.max(Date.now(), lastSeq + 1, ...state.queue.map((i) => i.seq + 1));
  return lastSeq;
}

async function recordPayout(person, collector, verifiedBy, signature, position) {
  await reload();
  const due = dueOf(person); // again, from disk: a second tap or a second tab pays nothing twice
  if (!due.length) throw new Error("already_paid");
  const body = {
    client_ref: clientRef(),
    beneficiary_code: person.code,
    entitlement_ids: due.map((e) => e.id),
    collector: collector.kind,
    verified_by: verifiedBy,
    paid_at: localIso(),
    signature_png: signature,
  };
  if (collector.kind === "proxy") body.proxy_id = collector.proxy_id;
  if (position) Object.assign(body, position);
  const item = {
    client_ref: body.client_ref,
    kind: "payout",
    owner: ownerOf(),
    code: person.code,
    seq: nextSeq(),
    body,
    display: {
      full_name: person.full_name,
      village: person.village,
      collector: collector.name,
      amount: total(due),
      periods: due.map((e) => e.period),
    },
  };
  await store.enqueue(item);
  await reload();
  return item;
}

async function recordVisit(person, outcome, note) {
  const position = recentPosition();
  const body = { client_ref: clientRef(), beneficiary_code: person.code, outcome, at: localIso() };
  if (note) body.note = note;
  if (position) Object.assign(body, position);
  await store.enqueue({
    client_ref: body.client_ref,
    kind: "visit",
    owner: ownerOf(),
    code: person.code,
    seq: nextSeq(),
    body,
    display: { full_name: person.full_name, village: person.village },
  });
  await reload();
  show({ name: "person", code: person.code });
  banner("ok", t("visit.recorded", { what: t(`visit.${outcome}`), name: person.full_name }), "visit-recorded");
  trySync();
}

function renderReceipt({ ref }) {
  const item = state.queue.find((i) => i.client_ref === ref) || state.history.find((i) => i.client_ref === ref);
  if (!item) return h("section", { class: "screen" }, backButton(t("back.list"), () => show({ name: "route" })));
  const result = item.result || null;
  const synced = result && (result.status === "applied" || result.status === "duplicate");
  const qrText = synced && result.receipt_verify_url
    ? result.receipt_verify_url
    : `PT1|${item.client_ref}|${item.body.beneficiary_code}|${item.display.amount}|${item.body.paid_at}`;
  return h(
    "section",
    { class: "screen", testid: "receipt-screen" },
    h(
      "div",
      { class: "card receipt" },
      h("h1", {}, synced ? t("receipt.title") : t("receipt.tempTitle")),
      h("p", { class: "total", testid: "receipt-amount" }, money(item.display.amount)),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("pay.beneficiary")),
        h("dd", { testid: "receipt-name" }, item.display.full_name),
        h("dt", {}, t("pay.collector")),
        h("dd", {}, item.display.collector),
        h("dt", {}, t("receipt.periods")),
        h("dd", {}, item.display.periods.map(period).join(", ")),
        h("dt", {}, t("receipt.time")),
        h("dd", { testid: "receipt-time" }, dateTime(item.body.paid_at)),
        synced ? h("dt", {}, t("receipt.number")) : null,
        synced ? h("dd", { testid: "receipt-no" }, result.receipt_no || "") : null
      ),
      drawQr(h("canvas", { class: "qr", testid: "receipt-qr" }), qrText, 300),
      synced ? null : h("p", { class: "note strong", testid: "receipt-note" }, t("receipt.tempNote"))
    ),
    h("button", { class: "primary big", type: "button", testid: "receipt-done", onclick: () => show({ name: "route" }) }, t("receipt.done"))
  );
}

// ---------------------------------------------------------------------------
// Queue, device

function renderQueue() {
  const flagged = state.history.filter((i) => i.result && (i.result.status === "conflict" || i.result.status === "rejected"));
  const done = state.history.filter((i) => !flagged.includes(i));
  const section = (title, items, testid, empty) =>
    h(
      "div",
      { class: "card", testid },
      h("h2", {}, `${title} (${items.length})`),
      items.length
        ? h("ul", { class: "history" }, ...items.sort((a, b) => b.seq - a.seq).map((i) => historyItem(i)))
        : h("p", {}, empty)
    );
  return h(
    "section",
    { class: "screen", testid: "queue-screen" },
    backButton(t("back.list"), () => show({ name: state.token ? "route" : "pair" })),
    h("h1", {}, t("queue.title")),
    h("button", { class: "primary big", type: "button", testid: "sync-big", onclick: () => syncNow(true) }, t("sync")),
    flagged.length ? section(t("queue.flagged"), flagged, "queue-flagged", "") : null,
    section(t("queue.waiting"), state.queue.map((i) => ({ ...i, queued: true })), "queue-waiting", t("queue.none")),
    section(t("queue.done"), done, "queue-done", t("queue.none"))
  );
}

function renderDevice() {
  const device = state.device;
  const error = h("p", { class: "error big-error", role: "alert", testid: "signout-error" });
  const signOut = h("button", { class: "danger big", type: "button", testid: "sign-out" }, t("device.signOut"));
  signOut.addEventListener("click", async () => {
    await reload();
    if (state.queue.length) {
      error.textContent = t("device.signOutRefused", { n: state.queue.length });
      return;
    }
    signOut.disabled = true;
    if (navigator.onLine && state.token) {
      try {
        await call("DELETE", "/api/v1/devices/current", { token: state.token });
      } catch (_err) {
        // Signing out wipes the tablet even when the server cannot be told.
      }
    }
    await store.wipeDevice();
    await reload();
    show({ name: "pair" });
    banner("ok", t("device.signedOut"), "signed-out");
  });
  return h(
    "section",
    { class: "screen", testid: "device-screen" },
    backButton(t("back.list"), () => show({ name: "route" })),
    h("h1", {}, t("device.title")),
    h(
      "div",
      { class: "card" },
      device
        ? h(
            "dl",
            { class: "facts" },
            h("dt", {}, t("device.name")),
            h("dd", { testid: "device-name" }, device.name),
            h("dt", {}, t("device.user")),
            h("dd", { testid: "device-user" }, `${device.user.full_name} (${device.user.username})`),
            h("dt", {}, t("device.point")),
            h("dd", {}, `${device.point.name} (${device.point.code})`),
            h("dt", {}, t("device.expires")),
            h("dd", {}, date(device.expires_at))
          )
        : h("p", {}, t("device.unknown"))
    ),
    h("div", { class: "card stack" }, h("p", {}, t("device.signOutExplain")), error, signOut)
  );
}

// ---------------------------------------------------------------------------
// Server calls

/** Return the username the tablet pays for now (recorded with each queued item). */
function ownerOf() {
  return state.device && state.device.user ? state.device.user.username : null;
}

async function pair(token, sayError) {
  if (!navigator.onLine) {
    sayError(t("pair.needNetwork"));
    return;
  }
  try {
    const { body } = await call("GET", "/api/v1/devices/current", { token });
    // What waits was paid by whoever the tablet belonged to: it syncs only under a
    // token of that same person, never in another delivery user's name.
    const foreign = state.queue.filter((item) => item.owner && item.owner !== body.user.username);
    if (foreign.length) {
      sayError(t("pair.otherUser", { n: foreign.length, name: foreign[0].owner }));
      return;
    }
    await store.setMeta("token", token);
    await store.setMeta("device", body);
    await store.setMeta("revoked", false);
  } catch (err) {
    if (err instanceof ApiError && err.kind === "unauthorized") sayError(t("pair.refused"));
    else sayError(problemText(err));
    return;
  }
  await reload();
  show({ name: "route" });
  banner("ok", t("pair.done", { name: state.device.user.full_name }), "paired");
  await loadRoute();
  trySync();
}

async function loadRoute() {
  if (!state.token) return;
  let said = null;
  try {
    const { body } = await call("GET", "/api/v1/routes/current", { token: state.token });
    const people = (body.people || []).map((person, order) => ({
      ...person,
      order,
      _fold: fold([person.full_name, person.code, person.village, person.commune, person.address].join(" ")),
    }));
    const route = {
      route_id: body.route_id,
      period: body.period,
      salt: body.salt,
      expires_at: body.expires_at || null,
      loaded_at: new Date().toISOString(),
    };
    await store.replaceRoute(route, people);
    await reload();
    said = ["ok", t("route.loaded", { n: people.length }), "route-loaded"];
  } catch (err) {
    if (err instanceof ApiError && err.kind === "unauthorized") {
      await revoked();
      return;
    }
    if (err instanceof ApiError && err.kind === "not_found" && err.body && err.body.error === "no_route") {
      await store.wipeRoute();
      await reload();
      said = ["warn", t("route.noneAssigned"), "no-route-assigned"];
    } else {
      said = ["error", t("route.loadFailed", { why: problemText(err) }), "route-failed"];
    }
  }
  if (state.screen && ["route", "person"].includes(state.screen.name)) show(state.screen);
  else if (!state.screen || state.screen.name === "pair") home();
  banner(...said);
}

/** The device token no longer works: drop the route's data and the token, keep the queue. */
async function revoked() {
  await store.wipeDevice();
  await store.setMeta("revoked", true);
  await reload();
  show({ name: "pair" });
  banner("error", t("device.revoked"), "device-revoked");
}

function problemText(err) {
  if (!(err instanceof ApiError)) return t("problem.unknown");
  const base = t(`problem.${err.kind}`);
  const message = err.body && err.body.message;
  return message ? `${base} (${message})` : base;
}

/** Sync if there is something to send and a chance to reach the server. */
function trySync() {
  if (navigator.onLine && state.token && state.queue.length && !state.syncing) syncNow(false);
}

async function syncNow(pressed) {
  if (state.syncing) return;
  if (!state.token) {
    if (pressed) banner("error", t("device.revoked"), "device-revoked");
    return;
  }
  if (pressed && !navigator.onLine) {
    banner("warn", t("sync.offline", { n: state.queue.length }), "sync-offline");
    return;
  }
  state.syncing = true;
  renderHeader();
  let settled = [];
  try {
    settled = await syncQueue(state.token);
    await reload();
    reportSync(settled, pressed);
  } catch (err) {
    await reload();
    if (err instanceof ApiError && err.kind === "unauthorized") {
      state.syncing = false;
      await revoked();
      return;
    }
    banner("error", t("sync.failed", { n: state.queue.length, why: problemText(err) }), "sync-failed");
  } finally {
    state.syncing = false;
    renderHeader();
  }
  refresh();
}

function reportSync(settled, pressed) {
  const conflicts = settled.filter((i) => i.result.status === "conflict");
  const rejected = settled.filter((i) => i.result.status === "rejected");
  if (conflicts.length) {
    const ids = conflicts.map((i) => i.result.failure_id).filter(Boolean).map((id) => `#${id}`).join(", ");
    banner("error", t("sync.conflict", { n: conflicts.length, cases: ids }), "sync-conflict");
  } else if (rejected.length) {
    banner("error", t("sync.rejected", { n: rejected.length }), "sync-rejected");
  } else if (settled.length) {
    banner("ok", t("sync.done", { n: settled.length, left: state.queue.length }), "sync-done");
  } else if (pressed) {
    banner("ok", t("sync.nothing"), "sync-done");
  }
}

// ---------------------------------------------------------------------------
// Start

async function checkRouteExpiry() {
  const route = state.route;
  if (route && route.expires_at && Date.parse(route.expires_at) < Date.now()) {
    await store.wipeRoute();
    await reload();
    if (state.screen && state.screen.name !== "pair") show({ name: "route" });
    banner("warn", t("route.expired"), "route-expired");
    return true;
  }
  return false;
}

async function takePairingLink() {
  const match = /^#pair=([^&]+)/.exec(location.hash);
  if (!match) return null;
  // The token must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, "", location.pathname + location.search);
  return tokenFrom(decodeURIComponent(match[1]));
}

async function start() {
  applyStatic(document);
  document.querySelector("[data-testid=sync]").addEventListener("click", () => syncNow(true));
  document.querySelector("[data-testid=queue-count]").addEventListener("click", () => show({ name: "queue" }));
  document.querySelector("[data-testid=lang-toggle]").addEventListener("click", () => {
    setLang(getLang() === "vi" ? "en" : "vi");
    applyStatic(document);
    renderHeader();
    if (state.screen) show(state.screen);
  });
  window.addEventListener("online", () => {
    renderHeader();
    trySync();
  });
  window.addEventListener("offline", renderHeader);
  // A pairing link opened while the app is already open changes only the fragment.
  window.addEventListener("hashchange", async () => {
    const token = await takePairingLink();
    if (token) await pair(token, (message) => banner("error", message, "pair-error"));
  });

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/tablet/sw.js", { scope: "/tablet/" }).catch(() => {
      banner("warn", t("offline.noWorker"), "no-worker");
    });
  }

  const linkToken = await takePairingLink();
  await reload();
  const expired = await checkRouteExpiry();
  if (linkToken) {
    show({ name: "pair" });
    await pair(linkToken, (message) => banner("error", message, "pair-error"));
  } else {
    home();
    if (expired) banner("warn", t("route.expired"), "route-expired");
    if ((await store.getMeta("revoked")) && !state.token) banner("error", t("device.revoked"), "device-revoked");
    if (state.token && navigator.onLine) {
      await refreshDevice();
      if (state.token && !state.route) await loadRoute();
      trySync();
    }
  }
  setInterval(async () => {
    await checkRouteExpiry();
    trySync();
  }, SYNC_EVERY_MS);
  document.body.dataset.ready = "1";
}

/** Refresh who the tablet belongs to; a 401 here means it was revoked. */
async function refreshDevice() {
  try {
    const { body } = await call("GET", "/api/v1/devices/current", { token: state.token });
    await store.setMeta("device", body);
    await reload();
    renderHeader();
  } catch (err) {
    if (err instanceof ApiError && err.kind === "unauthorized") await revoked();
  }
}

start();
