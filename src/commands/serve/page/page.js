"use strict";

// The order page of `orderflow serve`: a form that places an order, and a
// list of orders that follows every order in flight over one events stream.
// Plain DOM, no framework; everything the API sends is shown with
// textContent, never parsed as HTML.
(() => {
  // ---------------------------------------------------------------------------
  // The vocabulary (SPEC §3)

  const TERMINAL = new Set(["COMPLETED", "CANCELLED", "FAILED"]);
  const PROGRESS = { PENDING: 0, CREATED: 1, INVENTORY_RESERVED: 2, PAID: 3, COMPLETED: 4, CANCELLED: 4, FAILED: 4 };
  const STATUS_TONE = {
    PENDING: "neutral", CREATED: "info", INVENTORY_RESERVED: "info", PAID: "info",
    COMPLETED: "success", CANCELLED: "warning", FAILED: "danger",
  };
  const STEPS = ["create_order", "reserve_inventory", "process_payment", "send_notification"];
  const STEP_LABELS = {
    create_order: "Create order",
    reserve_inventory: "Reserve inventory",
    process_payment: "Process payment",
    send_notification: "Send notification",
  };
  const STEP_STATE_TEXT = { running: "in progress", retrying: "retrying", waiting: "waiting for the database" };

  const PAGE_SIZE = 20;
  // One stream follows every order in flight (the server takes at most 100);
  // orders beyond those, and orders placed elsewhere, come with the poll.
  const MAX_FOLLOWED = 100;
  const FOLLOW_DEBOUNCE_MS = 300; // a burst of changes reopens the stream once…
  const FOLLOW_MAX_WAIT_MS = 1000; // …and a long one at least this often
  const POLL_MS = 10000;
  const POLL_EXTRA = 10; // unfollowed in-flight orders beyond the first page re-read per poll
  const RECONNECT_MS = 1000;
  const MAX_BACKOFF_MS = 30000;
  const TOKEN_KEY = "orderflow.token";
  const CANCEL_REASON = "cancelled from the order page";
  const CURRENCY = "USD";

  const isTerminal = (status) => TERMINAL.has(status);
  const stepLabel = (step) => STEP_LABELS[step] || String(step);

  // ---------------------------------------------------------------------------
  // Money: exact decimal strings ("1299.99") computed in integer cents with
  // BigInt, so no float rounding can ever creep into a total.

  function parseCents(value) {
    const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(String(value ?? "").trim());
    if (!match) return null;
    return BigInt(match[1]) * 100n + BigInt((match[2] || "").padEnd(2, "0"));
  }

  function formatCents(cents) {
    const sign = cents < 0n ? "-" : "";
    const abs = cents < 0n ? -cents : cents;
    return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, "0")}`;
  }

  function displayMoney(amount, currency = CURRENCY) {
    const cents = parseCents(amount);
    const text = cents === null ? String(amount ?? "") : formatCents(cents);
    return currency === "USD" ? `$${text}` : `${text} ${currency}`;
  }

  // ---------------------------------------------------------------------------
  // DOM helpers

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  let uidCounter = 0;
  const uid = () => ++uidCounter;

  /** Builds an element; string children become text nodes (never HTML). */
  function h(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) el.append(child);
    }
    return el;
  }

  function cloneTemplate(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }

  /** Adds or removes one ID in an ID-list attribute such as aria-describedby. */
  function toggleIdRef(el, attr, id, present) {
    const ids = new Set((el.getAttribute(attr) || "").split(/\s+/).filter(Boolean));
    if (present) ids.add(id);
    else ids.delete(id);
    if (ids.size) el.setAttribute(attr, [...ids].join(" "));
    else el.removeAttribute(attr);
  }

  const capitalize = (text) => (text ? text[0].toUpperCase() + text.slice(1) : text);

  function sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(new DOMException("Aborted", "AbortError"));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** A v4 UUID. crypto.randomUUID exists only in secure contexts (HTTPS or
   *  localhost); `serve` is often reached over plain HTTP on a LAN address. */
  function newUuid() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** Only http(s) links from the API become hrefs. */
  function safeHttpUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value, location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function errorText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    if (typeof value === "object" && typeof value.message === "string") return value.message;
    return String(value);
  }

  // ---------------------------------------------------------------------------
  // Times

  function relativeTime(iso, now = Date.now()) {
    const time = Date.parse(iso);
    if (Number.isNaN(time)) return "";
    const seconds = Math.round((now - time) / 1000);
    if (seconds < 10) return "just now";
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return new Date(time).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function absoluteTime(iso) {
    const time = Date.parse(iso);
    return Number.isNaN(time) ? "" : new Date(time).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  function setTime(el, iso) {
    if (!iso) {
      el.textContent = "";
      el.removeAttribute("datetime");
      return;
    }
    el.dateTime = iso;
    el.title = absoluteTime(iso);
    el.textContent = relativeTime(iso);
  }

  /** A span that counts down to `iso` ("in 3 s"), kept current by the ticker. */
  function countdown(iso) {
    const span = h("span", { className: "countdown", dataset: { countdown: iso } });
    renderCountdown(span, Date.now());
    return span;
  }

  function renderCountdown(el, now) {
    const seconds = Math.max(0, Math.ceil((Date.parse(el.dataset.countdown) - now) / 1000));
    el.textContent = Number.isNaN(seconds) ? "soon" : seconds > 0 ? `in ${seconds} s` : "now";
  }

  let ticks = 0;
  function tick() {
    const now = Date.now();
    for (const el of $$("[data-countdown]")) renderCountdown(el, now);
    ticks += 1;
    if (ticks % 15 === 0) {
      for (const el of $$("time[data-relative]")) if (el.dateTime) el.textContent = relativeTime(el.dateTime, now);
    }
  }

  // ---------------------------------------------------------------------------
  // Announcements and the connection indicator

  const live = $("#live");

  /** Appends a message to the polite live region; each addition is read once. */
  function announce(message) {
    const p = h("p", {}, message);
    live.append(p);
    setTimeout(() => p.remove(), 8000);
  }

  const connection = $("#connection");
  const connectionText = $("#connection-text");
  const CONNECTION_TEXT = {
    connecting: "Connecting…",
    online: "Connected",
    offline: "Server unreachable",
    degraded: "Temporal or database unavailable",
    auth: "API token needed",
  };
  let connectionState = "connecting";

  function setConnection(state) {
    if (state === connectionState) return;
    const before = connectionState;
    connectionState = state;
    connection.dataset.state = state;
    connectionText.textContent = CONNECTION_TEXT[state];
    if (state === "offline") announce("Lost the connection to the orderflow server. Retrying.");
    else if (state === "degraded") announce("The server cannot reach Temporal or the database right now.");
    else if (state === "online" && (before === "offline" || before === "degraded")) announce("Connection restored.");
  }

  // ---------------------------------------------------------------------------
  // The API token: asked for only after a 401, kept in sessionStorage.

  let memoryToken = null; // when sessionStorage is unavailable (privacy modes)

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || memoryToken;
    } catch {
      return memoryToken;
    }
  }

  function saveToken(token) {
    memoryToken = token;
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* memory only */ }
  }

  function forgetToken() {
    memoryToken = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* nothing stored */ }
  }

  class TokenRequiredError extends Error {
    constructor() {
      super("This server needs an API token.");
      this.name = "TokenRequiredError";
    }
  }

  const tokenDialog = $("#token-dialog");
  const tokenForm = $("#token-form");
  const tokenInput = $("#token");
  const tokenError = $("#token-error");
  const tokenReason = $("#token-reason");
  let tokenRequest = null;   // {promise, resolve, reject} while the dialog is open
  let tokenDeclined = false; // the user closed the dialog: background requests stop asking
  const tokenWaiters = new Set(); // run once when the next token is saved

  /** Resolves when a token to retry with is available; rejects with
   *  TokenRequiredError when the user declines. Concurrent 401s share one dialog. */
  function requestToken(rejectedToken, serverMessage, interactive) {
    const current = getToken();
    // Another request stored a newer token while this one was in flight.
    if (current && current !== rejectedToken) return Promise.resolve();
    if (current) forgetToken();
    if (tokenRequest) return tokenRequest.promise;
    if (tokenDeclined && !interactive) return Promise.reject(new TokenRequiredError());
    openTokenDialog(rejectedToken ? "The server did not accept that token." : "", serverMessage);
    return tokenRequest.promise;
  }

  function openTokenDialog(errorMessage, serverMessage) {
    tokenDeclined = false;
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    promise.catch(() => {}); // a decline is handled by each caller
    tokenRequest = { promise, resolve, reject };
    tokenInput.value = "";
    showTokenError(errorMessage);
    tokenReason.textContent = serverMessage ? `The server said: ${serverMessage}` : "";
    tokenReason.hidden = !serverMessage;
    setConnection("auth");
    if (!tokenDialog.open) tokenDialog.showModal();
    tokenInput.focus();
  }

  function showTokenError(message) {
    tokenError.textContent = message || "";
    tokenError.hidden = !message;
    if (message) {
      tokenInput.setAttribute("aria-invalid", "true");
      toggleIdRef(tokenInput, "aria-describedby", tokenError.id, true);
    } else {
      tokenInput.removeAttribute("aria-invalid");
      toggleIdRef(tokenInput, "aria-describedby", tokenError.id, false);
    }
  }

  /** Runs `callback` once, when a token is next saved: what failed for want
   *  of one (the catalog, the list, streams) starts again by itself. */
  function onNextToken(callback) {
    tokenWaiters.add(callback);
  }

  /** Resolves once a token is saved, for streams that wait without asking. */
  function waitForToken(signal) {
    return new Promise((resolve, reject) => {
      onNextToken(resolve);
      signal.addEventListener("abort", () => {
        tokenWaiters.delete(resolve);
        reject(new DOMException("Aborted", "AbortError"));
      }, { once: true });
    });
  }

  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = tokenInput.value.trim();
    if (!token) {
      showTokenError("Enter the API token.");
      tokenInput.focus();
      return;
    }
    saveToken(token);
    const request = tokenRequest;
    tokenRequest = null;
    tokenDialog.close("saved");
    request?.resolve();
    const waiters = [...tokenWaiters];
    tokenWaiters.clear();
    waiters.forEach((resume) => resume());
  });

  tokenInput.addEventListener("input", () => showTokenError(""));
  $("#token-cancel").addEventListener("click", () => tokenDialog.close("cancel"));

  // Escape fires "cancel" and then "close"; either way, closing without a
  // saved token declines.
  tokenDialog.addEventListener("close", () => {
    if (!tokenRequest) return;
    const request = tokenRequest;
    tokenRequest = null;
    tokenDeclined = true;
    request.reject(new TokenRequiredError());
  });

  // ---------------------------------------------------------------------------
  // The API client

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.message);
      this.name = "ApiError";
      this.status = status;
      this.code = problem.code;
      this.problems = problem.problems;
      this.orderStatus = problem.orderStatus;
    }
  }

  class NetworkError extends Error {
    constructor() {
      super("Can't reach the orderflow server.");
      this.name = "NetworkError";
    }
  }

  const isAbort = (err) => err?.name === "AbortError";

  function defaultMessage(status) {
    if (status === 404) return "Not found.";
    if (status === 503) return "The service is unavailable right now.";
    if (status === 504) return "The server took too long to answer.";
    if (status >= 500) return `The server had a problem (HTTP ${status}).`;
    return `The request failed (HTTP ${status}).`;
  }

  /** The API's `{"error": {...}}` body, or a stand-in for anything else. */
  async function readProblem(response) {
    let payload = null;
    try { payload = await response.json(); } catch { /* not JSON */ }
    const error = payload && typeof payload.error === "object" && payload.error !== null ? payload.error : {};
    return {
      code: typeof error.code === "string" ? error.code : `HTTP_${response.status}`,
      message: typeof error.message === "string" && error.message ? error.message : defaultMessage(response.status),
      problems: Array.isArray(error.problems) ? error.problems : [],
      orderStatus: typeof error.status === "string" ? error.status : null,
    };
  }

  /**
   * fetch() with the bearer token, JSON in and out, and the 401 → token →
   * retry dance. `interactive` marks requests the user just asked for: they
   * may reopen a dialog the user closed before. `raw` returns the Response
   * (for event streams). Throws ApiError, NetworkError, TokenRequiredError
   * or an AbortError.
   */
  async function api(path, { method = "GET", json, headers = {}, signal, accept = "application/json", interactive = false, raw = false } = {}) {
    const body = json === undefined ? undefined : JSON.stringify(json);
    for (;;) {
      const sent = new Headers(headers);
      sent.set("Accept", accept);
      if (body !== undefined) sent.set("Content-Type", "application/json");
      const token = getToken();
      if (token) sent.set("Authorization", `Bearer ${token}`);

      let response;
      try {
        response = await fetch(path, { method, headers: sent, body, signal, cache: "no-store", credentials: "same-origin" });
      } catch (err) {
        if (isAbort(err) || signal?.aborted) throw err;
        setConnection("offline");
        throw new NetworkError();
      }

      if (response.status === 401) {
        const problem = await readProblem(response);
        await requestToken(token, problem.message, interactive);
        continue; // retry the same request with the new token
      }
      if (!response.ok) {
        const problem = await readProblem(response);
        const unavailable = response.status === 503 || problem.code === "UNAVAILABLE";
        setConnection(unavailable ? "degraded" : "online");
        throw new ApiError(response.status, problem);
      }
      setConnection("online");
      if (raw) return response;
      let data = null;
      if (response.status !== 204) {
        try {
          data = await response.json();
        } catch (err) {
          if (isAbort(err)) throw err;
          // The answer was cut off: what the request did is unknown, so it
          // is treated like a lost connection (a resubmission keeps its key).
          throw new NetworkError();
        }
      }
      return { status: response.status, headers: response.headers, data };
    }
  }

  function describeError(err) {
    if (err instanceof NetworkError) return "Can't reach the orderflow server.";
    if (err instanceof TokenRequiredError) return "This server needs an API token.";
    if (err instanceof ApiError) return err.message;
    return `Something went wrong: ${err?.message || err}`;
  }

  const orderPath = (id) => `/api/orders/${encodeURIComponent(id)}`;

  // ---------------------------------------------------------------------------
  // The catalog

  const catalog = new Map(); // productID → {productID, name, unitPrice, stock, cents}
  let catalogState = "loading"; // loading | ready | empty | error
  let catalogError = "";
  let catalogRetry = { timer: null, delay: 5000 };
  let catalogRefreshTimer = null;
  const catalogStatus = $("#catalog-status");

  async function loadCatalog({ quiet = false, interactive = false } = {}) {
    clearTimeout(catalogRetry.timer);
    if (!quiet) {
      catalogState = "loading";
      renderCatalogStatus();
    }
    try {
      const { data } = await api("/api/products", { interactive });
      catalog.clear();
      for (const product of Array.isArray(data) ? data : []) {
        if (product && typeof product.productID === "string") {
          catalog.set(product.productID, { ...product, cents: parseCents(product.unitPrice) });
        }
      }
      catalogState = catalog.size ? "ready" : "empty";
      catalogRetry.delay = 5000;
    } catch (err) {
      if (quiet && catalog.size) return; // keep the catalog we have
      catalogState = "error";
      catalogError = describeError(err);
      if (err instanceof TokenRequiredError) {
        onNextToken(retryCatalog);
      } else {
        catalogRetry.timer = setTimeout(() => loadCatalog({ quiet: true }), catalogRetry.delay);
        catalogRetry.delay = Math.min(catalogRetry.delay * 2, 60000);
      }
    }
    renderCatalogStatus();
    refreshProductSelects();
    updateTotals();
  }

  function retryCatalog() {
    if (catalogState === "error") loadCatalog();
  }

  /** Stock moves as orders reserve and release it: re-read it now and then. */
  function scheduleCatalogRefresh() {
    clearTimeout(catalogRefreshTimer);
    catalogRefreshTimer = setTimeout(() => loadCatalog({ quiet: true }), 1500);
  }

  function renderCatalogStatus() {
    catalogStatus.replaceChildren();
    catalogStatus.dataset.tone = catalogState === "error" ? "error" : "info";
    if (catalogState === "ready") {
      catalogStatus.hidden = true;
      return;
    }
    catalogStatus.hidden = false;
    if (catalogState === "loading") {
      catalogStatus.append(h("span", { className: "spinner", "aria-hidden": "true" }), "Loading products…");
    } else if (catalogState === "empty") {
      catalogStatus.append(
        "The catalog is empty. Load one with ",
        h("code", {}, "orderflow product import --file examples/catalog.json"),
        ".",
      );
    } else {
      const retry = h("button", { type: "button", className: "button button-small" }, "Retry");
      retry.addEventListener("click", () => loadCatalog({ interactive: true }));
      catalogStatus.append(h("span", {}, `Couldn't load the products: ${catalogError}`), " ", retry);
    }
  }

  function productOptionText(product) {
    const parts = [product.name || product.productID, displayMoney(product.unitPrice)];
    if (typeof product.stock === "number") parts.push(product.stock > 0 ? `${product.stock} in stock` : "out of stock");
    return `${parts[0]} — ${parts.slice(1).join(" · ")}`;
  }

  /** Fills a product <select>, keeping its choice when the product is still there. */
  function fillProductSelect(select, preferred) {
    const chosen = preferred ?? select.value;
    select.replaceChildren();
    if (!catalog.size) {
      const text = catalogState === "loading" ? "Loading products…" : "No products available";
      select.append(h("option", { value: "" }, text));
      return;
    }
    for (const product of catalog.values()) {
      select.append(h("option", { value: product.productID }, productOptionText(product)));
    }
    select.value = catalog.has(chosen) ? chosen : defaultProduct(select);
  }

  /** The first product no other row has chosen (duplicates are refused). */
  function defaultProduct(except) {
    const taken = new Set(itemRows().map((row) => $(".item-product", row)).filter((s) => s !== except).map((s) => s.value));
    for (const id of catalog.keys()) if (!taken.has(id)) return id;
    return catalog.keys().next().value ?? "";
  }

  function refreshProductSelects() {
    const ids = [...catalog.keys()];
    for (const row of itemRows()) {
      const select = $(".item-product", row);
      const options = [...select.options];
      // Same products (only stock or prices moved): update the texts in place,
      // so a select the user is working with is not rebuilt under them.
      if (ids.length && options.length === ids.length && options.every((o, i) => o.value === ids[i])) {
        options.forEach((option, i) => { option.textContent = productOptionText(catalog.get(ids[i])); });
      } else {
        fillProductSelect(select);
      }
    }
  }

  // ---------------------------------------------------------------------------
  // The order form: item rows and the live total

  const form = $("#order-form");
  const customerInput = $("#customer");
  const emailInput = $("#email");
  const paymentSelect = $("#payment");
  const itemsList = $("#items");
  const addItemButton = $("#add-item");
  const totalEl = $("#total");
  const submitButton = $("#submit");
  const formStatus = $("#form-status");
  const formProblems = $("#form-problems");
  const formProblemsList = $("#form-problems-list");

  const itemRows = () => $$(".item-row", itemsList);

  function addItemRow({ focus = false } = {}) {
    const row = cloneTemplate("item-row-template");
    const n = uid();
    const select = $(".item-product", row);
    const quantity = $(".item-quantity", row);
    select.id = `item-${n}-product`;
    quantity.id = `item-${n}-quantity`;
    const [productLabel, quantityLabel] = $$("label", row);
    productLabel.htmlFor = select.id;
    quantityLabel.htmlFor = quantity.id;
    // Each input's error element is "<input id>-error" (see setFieldError).
    $(".item-product-error", row).id = `${select.id}-error`;
    $(".item-quantity-error", row).id = `${quantity.id}-error`;
    itemsList.append(row);
    fillProductSelect(select, defaultProduct(select));
    renumberRows();
    updateTotals();
    if (focus) select.focus();
    return row;
  }

  function removeItemRow(row) {
    const rows = itemRows();
    if (rows.length <= 1) return;
    const index = rows.indexOf(row);
    row.remove();
    idempotencyKey = null; // the order changed
    renumberRows();
    updateTotals();
    const remaining = itemRows();
    const next = remaining[index] || remaining[index - 1];
    (next ? $(".item-product", next) : addItemButton).focus();
  }

  /** Labels and remove buttons say which item they are for. */
  function renumberRows() {
    const rows = itemRows();
    rows.forEach((row, i) => {
      for (const span of $$(".item-label-n", row)) span.textContent = `, item ${i + 1}`;
      const remove = $(".item-remove", row);
      remove.setAttribute("aria-label", `Remove item ${i + 1}`);
      remove.disabled = rows.length === 1;
    });
  }

  /** One row as the order will carry it, and its amount in cents when computable. */
  function readRow(row) {
    const productID = $(".item-product", row).value;
    const product = catalog.get(productID) || null;
    const rawQuantity = $(".item-quantity", row).value.trim();
    const quantity = /^\d+$/.test(rawQuantity) ? BigInt(rawQuantity) : null;
    const cents = product && product.cents !== null && quantity !== null ? product.cents * quantity : null;
    return { productID, product, rawQuantity, quantity, cents };
  }

  /** Recomputes each line and the total; returns the total in cents. */
  function updateTotals() {
    let total = 0n;
    for (const row of itemRows()) {
      const line = readRow(row);
      if (line.cents !== null) total += line.cents;
      $(".item-amount", row).textContent = line.cents === null ? "—" : displayMoney(formatCents(line.cents));
      const note = $(".item-note", row);
      const stock = line.product?.stock;
      const short = typeof stock === "number" && line.quantity !== null && line.quantity > BigInt(stock);
      note.textContent = short
        ? `Only ${stock} in stock: this order would end FAILED with OUT_OF_STOCK.`
        : "";
      note.hidden = !short;
    }
    totalEl.textContent = formatCents(total);
    return total;
  }

  /** A quantity as typed. Validation is the server's: 0, 1.5 or an empty
   *  field are sent as they are (empty as null) and come back as problems. */
  function quantityValue(raw) {
    if (raw === "") return null;
    const number = Number(raw);
    return Number.isFinite(number) ? number : raw;
  }

  function buildOrder() {
    const order = { customerID: customerInput.value.trim() };
    const email = emailInput.value.trim();
    if (email) order.customerEmail = email;
    order.paymentMethod = paymentSelect.value;
    order.currency = CURRENCY;
    const items = itemRows().map((row) => {
      const line = readRow(row);
      const item = { productID: line.productID, quantity: quantityValue(line.rawQuantity) };
      if (line.product && line.product.cents !== null) item.unitPrice = formatCents(line.product.cents);
      return item;
    });
    order.totalAmount = formatCents(updateTotals());
    order.items = items;
    return order;
  }

  // ---------------------------------------------------------------------------
  // Field problems (422)

  function setFieldError(input, messages) {
    const errorEl = document.getElementById(`${input.id}-error`);
    errorEl.textContent = messages.map(capitalize).join("\n");
    errorEl.hidden = false;
    input.setAttribute("aria-invalid", "true");
    toggleIdRef(input, "aria-describedby", errorEl.id, true);
  }

  function clearFieldError(input) {
    const errorEl = document.getElementById(`${input.id}-error`);
    if (errorEl) {
      errorEl.textContent = "";
      errorEl.hidden = true;
      toggleIdRef(input, "aria-describedby", errorEl.id, false);
    }
    input.removeAttribute("aria-invalid");
  }

  function clearProblems() {
    for (const input of $$("[aria-invalid]", form)) clearFieldError(input);
    formProblemsList.replaceChildren();
    formProblems.hidden = true;
  }

  /** Where a problem's `field` is shown: an input, or null for the form. */
  function problemTarget(field) {
    if (typeof field !== "string") return null;
    const simple = new Map([["customerID", customerInput], ["customerEmail", emailInput], ["paymentMethod", paymentSelect]]);
    if (simple.has(field)) return { input: simple.get(field), prefix: "" };
    const match = /^items\[(\d+)\](?:\.([A-Za-z]+))?/.exec(field);
    if (!match) return null;
    const row = itemRows()[Number(match[1])];
    if (!row) return null;
    const sub = match[2];
    if (sub === "quantity") return { input: $(".item-quantity", row), prefix: "" };
    // productID, unitPrice, or the item as a whole (e.g. a duplicate product).
    return { input: $(".item-product", row), prefix: sub && sub !== "productID" ? `${sub}: ` : "" };
  }

  function showProblems(problems, fallback) {
    const byInput = new Map();
    const formLevel = [];
    for (const problem of problems) {
      const message = String(problem?.message ?? "is invalid");
      const target = problemTarget(problem?.field);
      if (target) {
        if (!byInput.has(target.input)) byInput.set(target.input, []);
        byInput.get(target.input).push(target.prefix + message);
      } else {
        formLevel.push(problem?.field ? `${problem.field}: ${message}` : capitalize(message));
      }
    }
    if (!problems.length) formLevel.push(fallback);
    for (const [input, messages] of byInput) setFieldError(input, messages);
    if (formLevel.length) showFormProblems(formLevel);

    const count = byInput.size + formLevel.length;
    setFormStatus(`The order was not placed: ${count === 1 ? "1 problem" : `${count} problems`} to fix.`, "error");
    // Focus the first invalid field in document order; it reads its error.
    const first = $$("[aria-invalid='true']", form)[0];
    (first || formProblems).focus();
  }

  function showFormProblems(messages, title = "The order was not placed") {
    $(".form-problems-title", formProblems).textContent = title;
    formProblemsList.replaceChildren(...messages.map((m) => h("li", {}, m)));
    formProblems.hidden = false;
  }

  function setFormStatus(message, tone = "info") {
    formStatus.textContent = message;
    formStatus.dataset.tone = tone;
  }

  // ---------------------------------------------------------------------------
  // Submitting

  // One key per submission attempt: kept when the user resubmits after a
  // network or server error (the server derives the order ID from it, so
  // the retry cannot place a second order), renewed after a success or an edit.
  let idempotencyKey = null;
  let submitting = false;

  function setSubmitting(on) {
    submitting = on;
    // aria-disabled rather than disabled: the button keeps keyboard focus.
    submitButton.setAttribute("aria-disabled", String(on));
    submitButton.textContent = on ? "Placing order…" : "Place order";
    form.setAttribute("aria-busy", String(on));
  }

  async function onSubmit(event) {
    event.preventDefault();
    if (submitting) return;
    clearProblems();
    const order = buildOrder();
    idempotencyKey ??= newUuid();
    setSubmitting(true);
    setFormStatus("Placing order…");
    try {
      const { status, data } = await api("/api/orders", {
        method: "POST",
        json: order,
        headers: { "Idempotency-Key": idempotencyKey },
        interactive: true,
      });
      idempotencyKey = null;
      onOrderPlaced(order, data || {}, status);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) {
        showProblems(err.problems, err.message);
      } else {
        let message = describeError(err);
        if (err instanceof NetworkError || (err instanceof ApiError && err.status >= 500)) {
          message += " Press Place order again to retry: the same order will not be placed twice.";
        }
        showFormProblems([message]);
        setFormStatus("The order was not placed.", "error");
        formProblems.focus();
      }
    } finally {
      setSubmitting(false);
    }
  }

  function onOrderPlaced(order, data, httpStatus) {
    const id = String(data.orderId || "");
    const existing = data.existing === true || httpStatus === 200;
    setFormStatus(
      existing ? `Order ${id} was already placed; it was not placed twice.` : `Order ${id} placed.`,
      "success",
    );
    for (const input of $$(".item-quantity", itemsList)) input.value = "1";
    updateTotals();
    scheduleCatalogRefresh();
    if (!id) return;

    const summary = {
      orderId: id,
      status: data.status || "PENDING",
      step: null,
      customerID: order.customerID,
      totalAmount: order.totalAmount,
      currency: order.currency,
      paymentMethod: order.paymentMethod,
      createdAt: new Date().toISOString(),
      uiUrl: data.uiUrl,
    };
    // A filter that would hide the new order is dropped: show everything.
    const refilter = statusFilter.value !== "" && statusFilter.value !== summary.status;
    if (refilter) statusFilter.value = "";
    const view = upsertOrder(summary, { atTop: true });
    view.placedHere = true; // kept in the list even before the database lists it
    if (existing) fetchOrder(view).catch(() => {});
    highlight(view);
    if (refilter) loadOrders();
    updateListChrome();
    followOrders();
  }

  form.addEventListener("submit", onSubmit);

  // Any edit makes a new submission attempt, and clears that field's error.
  function onFormEdit(event) {
    idempotencyKey = null;
    const target = event.target;
    if (target.getAttribute?.("aria-invalid")) clearFieldError(target);
    if (itemsList.contains(target)) updateTotals();
  }
  form.addEventListener("input", onFormEdit);
  form.addEventListener("change", onFormEdit);

  itemsList.addEventListener("click", (event) => {
    const remove = event.target.closest(".item-remove");
    if (remove) removeItemRow(remove.closest(".item-row"));
  });

  addItemButton.addEventListener("click", () => {
    idempotencyKey = null;
    addItemRow({ focus: true });
  });

  // ---------------------------------------------------------------------------
  // The orders list

  const ordersList = $("#orders");
  const ordersState = $("#orders-state");
  const statusFilter = $("#status-filter");
  const refreshButton = $("#refresh");
  const loadMoreButton = $("#load-more");
  const loadMoreError = $("#load-more-error");

  const views = new Map(); // orderId → view (one per <li class="order">)
  let nextPage = null;     // the Link rel="next" URL
  let listSeq = 0;         // drops answers to superseded list requests
  let listLoaded = false;
  let listError = null;
  let listRetry = { timer: null, delay: 2000 };
  let loadingMore = false;

  function ordersPath() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (statusFilter.value) params.set("status", statusFilter.value);
    return `/api/orders?${params}`;
  }

  /** The same-origin URL of `Link: <…>; rel="next"`, if any. */
  function parseNextLink(header) {
    if (!header) return null;
    for (const match of header.matchAll(/<([^>]*)>([^,]*)/g)) {
      const rel = /;\s*rel\s*=\s*"?([^";]+)"?/i.exec(match[2]);
      if (!rel || !rel[1].toLowerCase().split(/\s+/).includes("next")) continue;
      try {
        const url = new URL(match[1], location.href);
        if (url.origin === location.origin) return url.pathname + url.search;
      } catch { /* ignore a malformed link */ }
    }
    return null;
  }

  function createView(summary) {
    const el = cloneTemplate("order-template");
    const n = uid();
    const refs = {
      id: $(".order-id", el),
      status: $(".order-status", el),
      amount: $(".order-amount", el),
      customer: $(".order-customer", el),
      payment: $(".order-payment", el),
      time: $(".order-time", el),
      bar: $(".order-bar", el),
      step: $(".order-step", el),
      retry: $(".order-retry", el),
      failureLine: $(".order-failure-line", el),
      failure: $(".order-failure", el),
      failureMessage: $(".order-failure-message", el),
      message: $(".order-message", el),
      toggle: $(".order-toggle", el),
      ui: $(".order-ui", el),
      cancel: $(".order-cancel", el),
      details: $(".order-details", el),
    };
    refs.id.id = `order-${n}-id`;
    refs.details.id = `order-${n}-details`;
    refs.toggle.setAttribute("aria-controls", refs.details.id);
    // "Details" and "Cancel order" repeat on every order: name the order too.
    for (const control of [refs.toggle, refs.cancel, refs.ui, refs.bar]) {
      control.setAttribute("aria-describedby", refs.id.id);
    }
    el.dataset.orderId = summary.orderId;

    const view = {
      id: summary.orderId,
      el,
      refs,
      data: {},
      details: null,       // the last GET /api/orders/{id}
      detailsOpen: false,
      detailsSeq: 0,
      detailsTimer: null,
      polledAt: 0,         // when the poll last re-read it on its own
      cancelling: false,
      gone: false,
      placedHere: false,
    };
    refs.id.textContent = view.id;
    refs.toggle.addEventListener("click", () => toggleDetails(view));
    refs.cancel.addEventListener("click", () => cancelOrder(view));
    mergeOrder(view, summary);
    renderOrder(view);
    views.set(view.id, view);
    return view;
  }

  /** Merges an order as the API describes it (a list row, the full order,
   *  a cancel answer's `order`) into the view's data. */
  function mergeOrder(view, order) {
    const d = view.data;
    // A terminal status is final: a stale answer must not revive the order.
    if (isTerminal(d.status) && order.status && !isTerminal(order.status)) return;
    const statusChanged = order.status && order.status !== d.status;
    for (const key of ["status", "step", "customerID", "customerEmail", "totalAmount", "currency", "paymentMethod", "createdAt", "updatedAt", "uiUrl"]) {
      if (order[key] !== undefined) d[key] = order[key];
    }
    if (order.failure !== undefined) d.failure = order.failure;
    else if (order.failureCode !== undefined) {
      d.failure = order.failureCode ? { code: order.failureCode, message: d.failure?.code === order.failureCode ? d.failure.message : "" } : null;
    }
    if (order.cancellation !== undefined) d.cancellation = order.cancellation;

    if (Array.isArray(order.steps)) {
      view.details = order;
      // The current step's retry state, as the events stream would report it.
      const current = order.steps.find((s) => s.name === d.step);
      d.stepState = current?.state;
      d.attempt = current?.attempts;
      d.lastError = current?.lastError;
      d.nextAttemptAt = current?.nextAttemptAt;
    } else if (statusChanged) {
      d.stepState = d.attempt = d.lastError = d.nextAttemptAt = undefined;
    }
  }

  /** Applies one `change` event; false when it is older than what is shown
   *  (a status only moves forward: a stream that starts from an order's
   *  beginning replays what the list already showed). */
  function applyEvent(view, event) {
    const d = view.data;
    if (isTerminal(d.status) && !isTerminal(event.status)) return false;
    if (event.status && (PROGRESS[event.status] ?? 0) < (PROGRESS[d.status] ?? 0)) return false;
    if (event.status) d.status = event.status;
    if (event.step !== undefined) d.step = event.step;
    // The retry fields describe this moment only: absent means "not retrying".
    d.stepState = event.stepState;
    d.attempt = event.attempt;
    d.maxAttempts = event.maxAttempts ?? (event.attempt !== undefined ? d.maxAttempts : undefined);
    d.nextAttemptAt = event.nextAttemptAt;
    d.lastError = event.lastError;
    if (event.failure !== undefined) d.failure = event.failure;
    if (event.cancellation !== undefined) d.cancellation = event.cancellation;
    if (event.at) d.updatedAt = event.at;
    return true;
  }

  function stepLine(d) {
    const status = d.status;
    if (status === "COMPLETED") return "Completed: all four steps done.";
    if (status === "FAILED") return d.step ? `Failed at ${stepLabel(d.step)}. What was done was undone.` : "Failed.";
    if (status === "CANCELLED") {
      const reason = d.cancellation?.reason;
      return reason ? `Cancelled: ${reason}.` : "Cancelled.";
    }
    if (!d.step) return status === "PENDING" ? "Waiting for a worker to start it…" : "";
    const index = STEPS.indexOf(d.step);
    const position = index >= 0 ? `Step ${index + 1} of 4 · ` : "";
    const state = STEP_STATE_TEXT[d.stepState];
    return `${position}${stepLabel(d.step)}${state ? ` — ${state}` : ""}`;
  }

  function renderRetry(view) {
    const { data: d, refs } = view;
    const show = !isTerminal(d.status) && d.stepState === "retrying";
    refs.retry.hidden = !show;
    if (!show) {
      refs.retry.replaceChildren();
      return;
    }
    const parts = [];
    if (d.attempt !== undefined && d.attempt !== null) {
      parts.push(`attempt ${d.attempt}${d.maxAttempts ? `/${d.maxAttempts}` : ""}`);
    }
    const lastError = errorText(d.lastError);
    refs.retry.replaceChildren(
      h("strong", {}, "Retrying"),
      parts.length ? ` · ${parts.join(" · ")}` : "",
      lastError ? ` · last error: ${lastError}` : "",
      d.nextAttemptAt ? h("span", {}, " · next attempt ", countdown(d.nextAttemptAt)) : "",
    );
  }

  function renderOrder(view) {
    const { el, refs, data: d } = view;
    const status = String(d.status || "PENDING");
    const terminal = isTerminal(status);
    el.dataset.status = status;
    refs.status.textContent = status;
    refs.status.dataset.tone = STATUS_TONE[status] || "neutral";
    refs.amount.textContent = d.totalAmount !== undefined && d.totalAmount !== null ? displayMoney(d.totalAmount, d.currency || CURRENCY) : "";
    refs.customer.textContent = d.customerID || "";
    refs.customer.hidden = !d.customerID;
    refs.payment.textContent = d.paymentMethod || "";
    refs.payment.hidden = !d.paymentMethod;
    setTime(refs.time, d.createdAt);

    refs.bar.value = PROGRESS[status] ?? 0;
    refs.bar.setAttribute("aria-valuetext", terminal ? status.toLowerCase() : `${PROGRESS[status] ?? 0} of 4 steps done`);
    refs.step.textContent = stepLine(d);
    renderRetry(view);

    const failed = status === "FAILED" && d.failure?.code;
    refs.failureLine.hidden = !failed;
    refs.failure.textContent = failed ? d.failure.code : "";
    refs.failureMessage.textContent = failed && d.failure.message ? d.failure.message : "";

    // Present and usable only while the order can still be cancelled.
    refs.cancel.hidden = terminal || view.gone;
    refs.cancel.disabled = terminal || view.gone;
    refs.cancel.setAttribute("aria-disabled", String(view.cancelling));
    refs.cancel.textContent = view.cancelling ? "Cancelling…" : "Cancel order";

    const href = safeHttpUrl(d.uiUrl);
    refs.ui.hidden = !href;
    if (href) refs.ui.href = href;
    else refs.ui.removeAttribute("href");
  }

  function showOrderMessage(view, message, tone = "error") {
    const el = view.refs.message;
    el.textContent = message || "";
    el.dataset.tone = tone;
    el.hidden = !message;
  }

  /** Inserts or updates one order; new ones go after `after` (or at the top). */
  function upsertOrder(summary, { atTop = false, after = null } = {}) {
    let view = views.get(summary.orderId);
    if (view) {
      // A live stream knows better; between two streams, a list row older
      // than what the stream showed is not applied either.
      const behind = (PROGRESS[summary.status] ?? 0) < (PROGRESS[view.data.status] ?? 0);
      if (!isLive(view) && !behind) mergeOrder(view, summary);
      renderOrder(view);
      if (atTop && ordersList.firstElementChild !== view.el) ordersList.prepend(view.el);
      return view;
    }
    view = createView(summary);
    if (atTop) ordersList.prepend(view.el);
    else if (after) after.after(view.el);
    else ordersList.append(view.el);
    return view;
  }

  function removeView(view) {
    clearTimeout(view.detailsTimer);
    view.el.remove();
    views.delete(view.id);
    followOrders(); // an order shown no more is followed no more
  }

  function highlight(view) {
    view.el.classList.remove("is-new");
    void view.el.offsetWidth; // restart the animation
    view.el.classList.add("is-new");
  }

  /** Replaces the list with a first page, keeping the views (and their
   *  marks, expanded details) of orders still in it. */
  function reconcile(orders) {
    const keep = new Set(orders.map((o) => o.orderId));
    for (const view of [...views.values()]) {
      // An order placed here may not be in the database's list yet.
      const stillNew = view.placedHere && !isTerminal(view.data.status) && !statusFilter.value;
      if (!keep.has(view.id) && !stillNew) removeView(view);
    }
    let previous = null;
    for (const el of ordersList.children) if (!keep.has(el.dataset.orderId)) previous = el; // placed-here ones stay on top
    for (const order of orders) {
      const view = upsertOrder(order, { after: previous });
      const expected = previous ? previous.nextElementSibling : ordersList.firstElementChild;
      if (expected !== view.el) {
        if (previous) previous.after(view.el);
        else ordersList.prepend(view.el);
      }
      previous = view.el;
    }
  }

  /** Merges a fresh first page: new orders appear, none disappear. */
  function mergeFirstPage(orders) {
    let previous = null;
    for (const order of orders) {
      const existing = views.get(order.orderId);
      const view = existing ? upsertOrder(order) : upsertOrder(order, previous ? { after: previous } : { atTop: true });
      previous = view.el;
    }
  }

  const validOrders = (data) => (Array.isArray(data) ? data.filter((o) => o && typeof o.orderId === "string") : []);

  async function loadOrders({ interactive = false } = {}) {
    const seq = ++listSeq;
    clearTimeout(listRetry.timer);
    ordersList.setAttribute("aria-busy", "true");
    if (!views.size) showListState("loading");
    try {
      const { data, headers } = await api(ordersPath(), { interactive });
      if (seq !== listSeq) return;
      reconcile(validOrders(data));
      nextPage = parseNextLink(headers.get("Link"));
      listLoaded = true;
      listError = null;
      listRetry.delay = 2000;
    } catch (err) {
      if (seq !== listSeq || isAbort(err)) return;
      listError = err;
      if (err instanceof TokenRequiredError) {
        onNextToken(retryList);
      } else {
        listRetry.timer = setTimeout(() => loadOrders(), listRetry.delay);
        listRetry.at = Date.now() + listRetry.delay;
        listRetry.delay = Math.min(listRetry.delay * 2, MAX_BACKOFF_MS);
      }
    } finally {
      if (seq === listSeq) {
        ordersList.removeAttribute("aria-busy");
        updateListChrome();
        followOrders();
      }
    }
  }

  function retryList() {
    if (listError) loadOrders();
  }

  /** The periodic refresh: quiet, and only once the list has loaded. */
  async function pollOrders() {
    if (!listLoaded || listError || document.visibilityState !== "visible") return;
    const seq = listSeq;
    try {
      const { data, headers } = await api(ordersPath());
      if (seq !== listSeq) return;
      const hadNone = views.size === 0;
      const orders = validOrders(data);
      mergeFirstPage(orders);
      if (hadNone) nextPage = parseNextLink(headers.get("Link"));
      updateListChrome();
      followOrders();
      refreshUnfollowed(new Set(orders.map((o) => o.orderId)));
    } catch {
      // The connection indicator says so; the next poll tries again.
    }
  }

  /** Orders in flight that the stream does not follow (beyond the 100 it
   *  takes) and the first page did not carry: re-read a few per poll, the
   *  longest unread first. */
  function refreshUnfollowed(onFirstPage) {
    const followed = new Set(follow.ids);
    const stale = [...views.values()].filter((view) => !view.gone && !isTerminal(view.data.status)
      && !followed.has(view.id) && !isLive(view) && !onFirstPage.has(view.id));
    stale.sort((a, b) => a.polledAt - b.polledAt);
    const now = Date.now();
    for (const view of stale.slice(0, POLL_EXTRA)) {
      view.polledAt = now;
      fetchOrder(view).then(() => { if (isTerminal(view.data.status)) followOrders(); }, () => {});
    }
  }

  async function loadMore() {
    if (!nextPage || loadingMore) return;
    loadingMore = true;
    loadMoreError.hidden = true;
    loadMoreButton.setAttribute("aria-disabled", "true");
    loadMoreButton.textContent = "Loading…";
    const seq = listSeq;
    let firstNew = null;
    try {
      const { data, headers } = await api(nextPage, { interactive: true });
      if (seq !== listSeq) return;
      for (const order of validOrders(data)) {
        if (views.has(order.orderId)) continue;
        const view = upsertOrder(order);
        firstNew ??= view;
      }
      nextPage = parseNextLink(headers.get("Link"));
    } catch (err) {
      loadMoreError.textContent = `Couldn't load more orders: ${describeError(err)}`;
      loadMoreError.hidden = false;
    } finally {
      loadingMore = false;
      loadMoreButton.removeAttribute("aria-disabled");
      loadMoreButton.textContent = "Load more";
      updateListChrome();
      followOrders();
      // The button may have gone: keep keyboard focus in the list.
      if (firstNew && loadMoreButton.hidden) firstNew.refs.toggle.focus();
    }
  }

  /** Loading, empty and error states, and the Load more button. */
  function updateListChrome() {
    loadMoreButton.hidden = !nextPage || (listError && !views.size);
    if (listError) showListState("error");
    else if (!views.size) showListState("empty");
    else showListState(null);
  }

  function showListState(state) {
    ordersState.replaceChildren();
    ordersState.dataset.state = state || "";
    ordersState.hidden = !state;
    // An error over a list that is still shown is a slim banner.
    ordersState.classList.toggle("is-banner", state === "error" && views.size > 0);
    if (state === "loading") {
      ordersState.append(h("span", { className: "spinner", "aria-hidden": "true" }), h("span", {}, "Loading orders…"));
    } else if (state === "empty") {
      if (statusFilter.value) {
        const all = h("button", { type: "button", className: "button button-small" }, "Show all orders");
        all.addEventListener("click", () => { statusFilter.value = ""; loadOrders({ interactive: true }); });
        ordersState.append(h("p", { className: "state-title" }, `No ${statusFilter.value} orders.`), all);
      } else {
        ordersState.append(
          h("p", { className: "state-title" }, "No orders yet — place one above"),
          h("p", { className: "state-text" }, "Each order you place shows up here and updates as its workflow runs."),
        );
      }
    } else if (state === "error") {
      const needsToken = listError instanceof TokenRequiredError;
      const title = listError instanceof NetworkError
        ? "Can't reach the orderflow server."
        : needsToken ? "This server needs an API token." : `Couldn't load the orders: ${describeError(listError)}`;
      const button = h("button", { type: "button", className: "button button-small" }, needsToken ? "Enter token" : "Retry now");
      button.addEventListener("click", () => loadOrders({ interactive: true }));
      const text = needsToken
        ? "Enter it to see and place orders."
        : h("span", {}, "Retrying ", countdown(new Date(listRetry.at || Date.now()).toISOString()), "…");
      ordersState.append(
        h("div", {}, h("p", { className: "state-title" }, title), h("p", { className: "state-text" }, text)),
        button,
      );
    }
  }

  statusFilter.addEventListener("change", () => {
    nextPage = null;
    loadOrders({ interactive: true });
  });
  refreshButton.addEventListener("click", () => loadOrders({ interactive: true }));
  loadMoreButton.addEventListener("click", loadMore);

  // ---------------------------------------------------------------------------
  // One order: details, refresh, cancel

  async function fetchOrder(view, { interactive = false } = {}) {
    const seq = ++view.detailsSeq;
    try {
      const { data } = await api(orderPath(view.id), { interactive });
      if (seq !== view.detailsSeq || !data) return;
      mergeOrder(view, data);
      renderOrder(view);
      if (view.detailsOpen) renderDetails(view);
    } catch (err) {
      if (seq !== view.detailsSeq) return;
      if (err instanceof ApiError && err.status === 404) markGone(view, err.message);
      if (view.detailsOpen) renderDetailsError(view, describeError(err));
      throw err;
    }
  }

  function toggleDetails(view) {
    view.detailsOpen = !view.detailsOpen;
    view.refs.toggle.setAttribute("aria-expanded", String(view.detailsOpen));
    view.refs.details.hidden = !view.detailsOpen;
    if (view.detailsOpen) {
      renderDetails(view);
      fetchOrder(view, { interactive: true }).catch(() => {});
    }
    followOrders(); // expanded orders are followed first
  }

  /** Refetches the expanded details shortly after a burst of events. */
  function scheduleDetailsRefresh(view) {
    if (!view.detailsOpen) return;
    clearTimeout(view.detailsTimer);
    view.detailsTimer = setTimeout(() => fetchOrder(view).catch(() => {}), 300);
  }

  function renderDetailsError(view, message) {
    const panel = view.refs.details;
    const retry = h("button", { type: "button", className: "button button-small" }, "Retry");
    retry.addEventListener("click", () => {
      renderDetails(view);
      fetchOrder(view, { interactive: true }).catch(() => {});
    });
    panel.replaceChildren(h("p", { className: "details-error" }, `Couldn't load this order: ${message} `, retry));
  }

  function renderDetails(view) {
    const panel = view.refs.details;
    const order = view.details;
    if (!order) {
      panel.replaceChildren(h("p", { className: "details-loading" }, h("span", { className: "spinner", "aria-hidden": "true" }), "Loading steps…"));
      return;
    }
    const children = [h("h3", { className: "details-heading" }, "Steps"), renderSteps(order.steps)];
    children.push(renderFacts(order));
    if (Array.isArray(order.items) && order.items.length) children.push(renderItems(order));
    panel.replaceChildren(...children);
  }

  function renderSteps(steps) {
    const byName = new Map((Array.isArray(steps) ? steps : []).map((s) => [s.name, s]));
    const names = byName.size ? [...byName.keys()] : STEPS;
    const list = h("ol", { className: "steps" });
    for (const name of names) {
      const step = byName.get(name) || { name, state: "pending", attempts: 0 };
      const state = String(step.state || "pending");
      const attempts = Number(step.attempts) || 0;
      const body = h("div", { className: "step-body" },
        h("span", { className: "step-name" }, stepLabel(name)),
        h("span", { className: "step-state", dataset: { state } }, state),
        h("span", { className: "step-attempts" }, attempts ? `${attempts} ${attempts === 1 ? "attempt" : "attempts"}` : "not run"),
      );
      const item = h("li", { className: "step", dataset: { state } }, h("span", { className: "step-marker", "aria-hidden": "true" }), body);
      const lastError = errorText(step.lastError);
      if (lastError) item.append(h("p", { className: "step-error" }, `Last error: ${lastError}`));
      if (step.nextAttemptAt && state === "retrying") item.append(h("p", { className: "step-next" }, "Next attempt ", countdown(step.nextAttemptAt)));
      list.append(item);
    }
    return list;
  }

  function renderFacts(order) {
    const facts = [
      ["Customer", order.customerID],
      ["E-mail", order.customerEmail],
      ["Payment", order.paymentMethod],
      ["Total", order.totalAmount !== undefined ? displayMoney(order.totalAmount, order.currency || CURRENCY) : null],
      ["Created", absoluteTime(order.createdAt)],
      ["Updated", absoluteTime(order.updatedAt)],
      ["Failure", order.failure ? `${order.failure.code}${order.failure.message ? ` — ${order.failure.message}` : ""}` : null],
      ["Cancellation", order.cancellation ? `${order.cancellation.reason} (${order.cancellation.outcome})` : null],
      ["Source", typeof order.source === "string" ? order.source : null],
    ];
    const list = h("dl", { className: "facts" });
    for (const [term, value] of facts) {
      if (value === null || value === undefined || value === "") continue;
      list.append(h("div", { className: "fact" }, h("dt", {}, term), h("dd", {}, String(value))));
    }
    return list;
  }

  function renderItems(order) {
    const currency = order.currency || CURRENCY;
    const rows = order.items.map((item) => {
      const unit = parseCents(item.unitPrice);
      const quantity = Number.isInteger(item.quantity) ? BigInt(item.quantity) : null;
      const amount = unit !== null && quantity !== null ? displayMoney(formatCents(unit * quantity), currency) : "";
      const name = catalog.get(item.productID)?.name;
      return h("tr", {},
        h("th", { scope: "row" }, name ? h("span", {}, name, h("span", { className: "muted" }, ` ${item.productID}`)) : String(item.productID ?? "")),
        h("td", { className: "num" }, String(item.quantity ?? "")),
        h("td", { className: "num" }, displayMoney(item.unitPrice, currency)),
        h("td", { className: "num" }, amount),
      );
    });
    const table = h("table", { className: "items-table" },
      h("caption", { className: "visually-hidden" }, "Items"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Product"),
        h("th", { scope: "col", className: "num" }, "Qty"),
        h("th", { scope: "col", className: "num" }, "Unit price"),
        h("th", { scope: "col", className: "num" }, "Amount"))),
      h("tbody", {}, rows),
    );
    return h("div", { className: "table-wrap" }, table);
  }

  function markGone(view, message) {
    view.gone = true;
    view.el.classList.remove("is-live");
    showOrderMessage(view, message || "This order no longer exists.");
    renderOrder(view);
    followOrders();
  }

  async function cancelOrder(view) {
    if (view.cancelling || isTerminal(view.data.status)) return;
    view.cancelling = true;
    showOrderMessage(view, "");
    renderOrder(view);
    try {
      const { data } = await api(`${orderPath(view.id)}/cancel`, {
        method: "POST",
        json: { reason: CANCEL_REASON },
        interactive: true,
      });
      if (data?.order) mergeOrder(view, data.order);
      else if (data?.status) mergeOrder(view, { status: data.status });
      if (data?.outcome === "requested") {
        // 202: the order had not ended within the server's wait; it will.
        showOrderMessage(view, "Cancellation requested; the order is undoing its steps.", "info");
        announce(`Cancellation of order ${view.id} requested.`);
      } else {
        announce(data?.outcome === "already cancelled" ? `Order ${view.id} was already cancelled.` : `Order ${view.id} cancelled.`);
        scheduleCatalogRefresh();
      }
    } catch (err) {
      const message = err instanceof ApiError ? err.message : describeError(err);
      showOrderMessage(view, message);
      announce(`Order ${view.id} was not cancelled: ${message}`);
      if (err instanceof ApiError && err.status === 409) {
        if (err.orderStatus) mergeOrder(view, { status: err.orderStatus });
        fetchOrder(view).catch(() => {});
      } else if (err instanceof ApiError && err.status === 404) {
        markGone(view, message);
      }
    } finally {
      view.cancelling = false;
      const hadFocus = document.activeElement === view.refs.cancel;
      renderOrder(view);
      // The cancel button hides once the order has ended: keep focus nearby.
      if (hadFocus && view.refs.cancel.hidden) view.refs.toggle.focus();
      if (view.detailsOpen) scheduleDetailsRefresh(view);
      followOrders();
    }
  }

  // ---------------------------------------------------------------------------
  // The events stream (fetch + a small SSE parser, since EventSource cannot
  // send an Authorization header)

  /** text/event-stream parsing (WHATWG HTML "server-sent events"): chunks
   *  may split anywhere, even inside a "\r\n"; a blank line dispatches. */
  class SseParser {
    constructor(onEvent) {
      this.onEvent = onEvent;
      this.buffer = "";
      this.skipLeadingLF = false;
      this.type = "";
      this.data = [];
      this.lastEventId = "";
    }

    push(text) {
      if (this.skipLeadingLF && text) {
        if (text[0] === "\n") text = text.slice(1);
        this.skipLeadingLF = false;
      }
      if (!text) return;
      this.buffer += text;
      // A chunk ending in "\r" may be the first half of "\r\n".
      const endsWithCR = this.buffer.endsWith("\r");
      const lines = this.buffer.split(/\r\n|\r|\n/);
      this.buffer = lines.pop(); // the unfinished last line
      if (endsWithCR) this.skipLeadingLF = true;
      for (const line of lines) this.line(line);
    }

    line(line) {
      if (line === "") return this.dispatch();
      if (line[0] === ":") return undefined; // a comment: keep-alive
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
      return undefined; // "retry" and unknown fields are ignored
    }

    dispatch() {
      if (this.data.length) {
        this.onEvent({ type: this.type || "message", data: this.data.join("\n"), id: this.lastEventId });
      }
      this.type = "";
      this.data = [];
    }
  }

  /** Reads a stream until it ends, or until onEvent returns true. */
  async function readEventStream(response, onEvent) {
    if (!response.body) throw new Error("This browser cannot read streamed responses.");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let stop = false;
    const parser = new SseParser((event) => {
      if (!stop && onEvent(event) === true) stop = true;
    });
    try {
      while (!stop) {
        const { value, done } = await reader.read();
        if (done) break; // an event without its blank line is dropped, as the spec says
        parser.push(decoder.decode(value, { stream: true }));
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /** Splits an event ID "<orderId>@<mark>"; the order is the record's own
   *  `orderId` when it has one (the mark is whatever follows it and "@"). */
  function splitEventId(eventId, orderId) {
    if (typeof orderId === "string" && orderId) {
      return { orderId, mark: eventId.startsWith(`${orderId}@`) ? eventId.slice(orderId.length + 1) : "" };
    }
    const at = eventId.indexOf("@");
    return at > 0 ? { orderId: eventId.slice(0, at), mark: eventId.slice(at + 1) } : { orderId: "", mark: "" };
  }

  /** Handles one event of the stream; true when it changed an order shown. */
  function onStreamEvent(event) {
    if (event.type !== "change" && event.type !== "message") return false;
    let change;
    try { change = JSON.parse(event.data); } catch { return false; }
    if (!change || typeof change !== "object") return false;
    const { orderId, mark } = splitEventId(event.id, change.orderId);
    if (!orderId) return false;
    if (mark) marks.set(orderId, mark); // where this order resumes, whatever is shown
    const view = views.get(orderId);
    if (!view || view.gone) return false;
    const wasTerminal = isTerminal(view.data.status);
    if (!applyEvent(view, change)) return false;
    renderOrder(view);
    scheduleDetailsRefresh(view);
    if (isTerminal(view.data.status) && !wasTerminal) {
      view.el.classList.remove("is-live");
      announce(outcomeMessage(view));
      scheduleCatalogRefresh();
      followOrders(); // an order beyond the first 100 may take its place
    }
    return true;
  }

  function outcomeMessage(view) {
    const { status, failure } = view.data;
    if (status === "COMPLETED") return `Order ${view.id} completed.`;
    if (status === "FAILED") return `Order ${view.id} failed${failure?.code ? `: ${failure.code}` : ""}.`;
    return `Order ${view.id} was cancelled.`;
  }

  // ---------------------------------------------------------------------------
  // Following: ONE events stream for every order in flight that is shown,
  // GET /api/events?order=ID&order=ID@MARK… (at most 100 orders). Each order
  // keeps the mark of its last event; when the set of orders changes, or the
  // server closes the stream (every order ended, its time limit, a restart),
  // the stream is reopened with the orders left and their marks.

  const marks = new Map(); // orderId → the mark of its last event
  const follow = {
    ids: [],            // the orders the current stream follows (or will, on reconnecting)
    controller: null,   // set while a stream runs: aborts it, or its wait to reconnect
    timer: null,        // a reopen coalesced from a burst of changes
    burstAt: null,      // when that burst began
    delay: RECONNECT_MS / 2, // the backoff, kept across reopens
  };

  const isLive = (view) => view.el.classList.contains("is-live");

  /** The orders to follow: those shown and in flight, the expanded ones
   *  first, then in list order (the newest first), at most MAX_FOLLOWED. */
  function followedIds() {
    const candidates = $$(".order", ordersList)
      .map((el) => views.get(el.dataset.orderId))
      .filter((view) => view && !view.gone && !isTerminal(view.data.status));
    candidates.sort((a, b) => Number(b.detailsOpen) - Number(a.detailsOpen)); // stable
    return candidates.slice(0, MAX_FOLLOWED).map((view) => view.id);
  }

  function eventsPath(ids) {
    const params = ids.map((id) => {
      const mark = marks.get(id);
      return `order=${encodeURIComponent(mark ? `${id}@${mark}` : id)}`;
    });
    return `/api/events?${params.join("&")}`;
  }

  /** Marks the orders the open stream follows as live, and only those. */
  function setLive(ids) {
    const set = new Set(ids);
    for (const view of views.values()) {
      view.el.classList.toggle("is-live", set.has(view.id) && !view.gone && !isTerminal(view.data.status));
    }
  }

  /** Something may have changed the set of orders to follow: look again
   *  once the changes pause for FOLLOW_DEBOUNCE_MS (placing orders quickly,
   *  a page of the list), and no later than FOLLOW_MAX_WAIT_MS after the first. */
  function followOrders() {
    const now = Date.now();
    follow.burstAt ??= now;
    clearTimeout(follow.timer);
    const wait = Math.max(0, Math.min(FOLLOW_DEBOUNCE_MS, follow.burstAt + FOLLOW_MAX_WAIT_MS - now));
    follow.timer = setTimeout(() => {
      follow.timer = null;
      follow.burstAt = null;
      refollow();
    }, wait);
  }

  /** Reopens the stream unless the running one already follows the right
   *  orders. An order that ended needs no reopen: the server sends nothing
   *  more for it, and closes the stream once all have ended. */
  function refollow() {
    const wanted = followedIds();
    if (follow.controller) {
      const want = new Set(wanted);
      const have = new Set(follow.ids);
      const covered = wanted.every((id) => have.has(id))
        && follow.ids.every((id) => want.has(id) || isTerminal(views.get(id)?.data.status));
      if (covered) return;
      follow.controller.abort();
      follow.controller = null;
    }
    follow.ids = [];
    if (wanted.length) runStream();
    else setLive([]);
  }

  function stopFollowing() {
    clearTimeout(follow.timer);
    follow.timer = null;
    follow.burstAt = null;
    follow.controller?.abort();
    follow.controller = null;
    follow.ids = [];
    setLive([]);
  }

  /** The order a 404's message names, among those asked for. */
  function namedOrder(message, ids) {
    let found = null;
    for (const id of ids) {
      if (String(message).includes(id) && (!found || id.length > found.length)) found = id;
    }
    return found;
  }

  /** Runs one stream, reconnecting (with the marks) until no order is left
   *  to follow or refollow() replaces it. */
  async function runStream() {
    const controller = new AbortController();
    const { signal } = controller;
    follow.controller = controller;
    const current = () => follow.controller === controller;
    while (current()) {
      const ids = followedIds();
      follow.ids = ids;
      if (!ids.length) break;
      let received = 0;
      let pause = null; // ms before reconnecting; null: from the backoff
      try {
        const response = await api(eventsPath(ids), { signal, accept: "text/event-stream", raw: true });
        if (!current()) return;
        setLive(ids);
        await readEventStream(response, (event) => {
          if (!current()) return true;
          if (onStreamEvent(event)) received += 1;
          return false;
        });
      } catch (err) {
        if (!current()) return;
        if (err instanceof ApiError && err.status === 404) {
          // An order is not there (any more): drop it and ask for the others.
          const gone = namedOrder(err.message, ids);
          if (gone) {
            markGone(views.get(gone), err.message);
            pause = 0;
          } else {
            loadOrders();
          }
        } else if (err instanceof TokenRequiredError) {
          setLive([]);
          try { await waitForToken(signal); } catch { return; }
          continue;
        }
        // A network or server error (or a 422): reconnect below, backing off.
      }
      if (!current()) return;
      setLive([]);
      if (received > 0) follow.delay = RECONNECT_MS / 2;
      const ended = ids.every((id) => {
        const view = views.get(id);
        return !view || view.gone || isTerminal(view.data.status);
      });
      if (pause === null) {
        if (ended) pause = 0; // the server closed it because every order ended
        else if (received > 0) pause = RECONNECT_MS;
        else pause = follow.delay = Math.min(follow.delay * 2, MAX_BACKOFF_MS);
      }
      if (pause > 0) {
        try { await sleep(pause, signal); } catch { return; }
      }
    }
    if (current()) {
      follow.controller = null;
      follow.ids = [];
    }
  }

  // ---------------------------------------------------------------------------
  // Start

  addItemRow();
  loadCatalog();
  loadOrders();
  setInterval(tick, 1000);
  setInterval(pollOrders, POLL_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") pollOrders();
  });
  // The stream is closed when the page is hidden for good or put in the
  // back/forward cache, and reopened if it comes back from there.
  window.addEventListener("pagehide", stopFollowing);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      followOrders();
      pollOrders();
    }
  });
})();
