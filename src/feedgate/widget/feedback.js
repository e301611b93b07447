/*
 * feedgate's feedback widget: <feedgate-feedback> and window.feedgate.signal.
 *
 *   <script src="https://gateway.example/widget/feedback.js" defer></script>
 *   <feedgate-feedback request-id="..." token="..."></feedgate-feedback>
 *
 * Docs: docs/widget.md. No dependencies, no build step. Works under a strict Content-Security-Policy:
 * the host page needs no inline script or style, and the widget creates none (its styles are a
 * constructed stylesheet adopted by its shadow root, which style-src does not govern).
 */
(() => {
  "use strict";

  const TAG = "feedgate-feedback";
  if (!window.customElements || window.customElements.get(TAG)) {
    return; // loaded twice (or no custom elements): the first copy keeps working
  }

  // Where this script came from: the gateway, unless an `endpoint` says otherwise.
  const SCRIPT_ORIGIN = (() => {
    try {
      return new URL(document.currentScript.src).origin;
    } catch (_) {
      return window.location.origin;
    }
  })();
  // feedgate's own names for signals that speak against an answer; any other signal counts for it.
  const NEGATIVE_SIGNALS = new Set(["code_rejected", "regenerated", "abandoned"]);
  const RETRY_DELAY_MS = 600;
  const TIMEOUT_MS = 15000;
  const MAX_COMMENT = 4000; // the feedback API's limit

  /** A failed call, described for people and for `feedgate:error` (status 0: never reached the gateway). */
  class FeedbackError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** The gateway's base URL, or a FeedbackError: only http(s) URLs, so no attribute can name javascript:. */
  function baseUrl(endpoint) {
    let url;
    try {
      url = new URL(endpoint || SCRIPT_ORIGIN, window.location.href);
    } catch (_) {
      throw new FeedbackError(0, "the endpoint is not a URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new FeedbackError(0, "the endpoint must be an http or https URL");
    }
    return (url.origin + url.pathname).replace(/\/+$/, ""); // a path prefix stays; a query or fragment goes
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function send(url, token, body) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    // credentials "omit": the token is the only credential; no cookie of the gateway's origin is sent.
    const init = { method: "POST", headers, body: JSON.stringify(body), credentials: "omit", mode: "cors" };
    if (typeof AbortSignal !== "undefined" && AbortSignal.timeout) {
      init.signal = AbortSignal.timeout(TIMEOUT_MS);
    }
    return fetch(url, init);
  }

  /**
   * POST feedback for one request ID. Resolves with the HTTP status (201 stored, 202 pending), or rejects
   * with a FeedbackError. A network error is retried once: such a call almost always never reached the
   * gateway, and a rating is latest-wins anyway. An answer (a 4xx above all) is final, except a 503: the
   * gateway withdrew that write, so one retry is safe there too. A timeout is not retried: the gateway
   * may have stored it and only been slow to say so.
   */
  async function postFeedback(endpoint, requestId, token, body) {
    if (!requestId) throw new FeedbackError(0, "the request-id attribute is missing");
    const url = `${baseUrl(endpoint)}/v1/request/${encodeURIComponent(requestId)}/feedback`;
    let response;
    for (let attempt = 1; ; attempt += 1) {
      try {
        response = await send(url, token, body);
      } catch (error) {
        const timedOut = error && error.name === "TimeoutError";
        if (attempt === 1 && !timedOut) {
          await sleep(RETRY_DELAY_MS);
          continue;
        }
        const why = timedOut ? "the gateway did not answer in time" : "the gateway could not be reached";
        throw new FeedbackError(0, why);
      }
      if (response.status === 503 && attempt === 1) {
        await sleep(RETRY_DELAY_MS);
        continue;
      }
      break;
    }
    if (response.ok) return response.status;
    let message = response.statusText || `HTTP ${response.status}`;
    try {
      const answer = await response.json(); // Helicone's {"data": null, "error": "..."}
      if (answer && typeof answer.error === "string") message = answer.error;
    } catch (_) {
      // not JSON: the status text says enough
    }
    throw new FeedbackError(response.status, message);
  }

  function emit(target, name, detail) {
    // composed: the event leaves any shadow root the element sits in, so a page-level listener hears it.
    target.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail }));
  }

  const CSS = `
:host {
  display: inline-block;
  color: var(--feedgate-color, inherit);
  font: var(--feedgate-font, inherit);
}
:host([hidden]), [hidden] { display: none !important; }
.bar { display: inline-flex; gap: var(--feedgate-gap, 0.25em); align-items: center; }
button {
  font: inherit;
  color: inherit;
  background: var(--feedgate-background, transparent);
  border: 1px solid var(--feedgate-border-color, currentColor);
  border-radius: var(--feedgate-radius, 0.375em);
  padding: 0.25em 0.5em;
  cursor: pointer;
  line-height: 1;
}
button:hover { background: var(--feedgate-hover-background, rgba(127, 127, 127, 0.15)); }
button:focus-visible {
  outline: 2px solid var(--feedgate-focus-color, #2563eb);
  outline-offset: 2px;
}
button[aria-pressed="true"] {
  color: var(--feedgate-accent-contrast, #fff);
  background: var(--feedgate-accent, #2563eb);
  border-color: var(--feedgate-accent, #2563eb);
}
button:disabled { opacity: 0.6; cursor: default; }
svg {
  width: var(--feedgate-icon-size, 1.25em);
  height: var(--feedgate-icon-size, 1.25em);
  vertical-align: middle;
}
.down svg { transform: rotate(180deg); }
.comment { display: flex; flex-direction: column; gap: 0.25em; margin-top: 0.5em; max-width: 32em; }
textarea {
  font: inherit;
  color: inherit;
  background: var(--feedgate-background, transparent);
  border: 1px solid var(--feedgate-border-color, currentColor);
  border-radius: var(--feedgate-radius, 0.375em);
  padding: 0.375em;
  min-height: 4em;
  resize: vertical;
}
textarea:focus-visible { outline: 2px solid var(--feedgate-focus-color, #2563eb); outline-offset: 1px; }
.send { align-self: flex-start; }
.status { margin: 0.25em 0 0; font-size: 0.875em; min-height: 1.2em; }
.status.error { color: var(--feedgate-error-color, #b91c1c); }
`;

  let sharedSheet = null; // one stylesheet object shared by every widget on the page

  function adoptStyles(root) {
    const constructable = typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype;
    if (constructable && "adoptedStyleSheets" in root) {
      if (!sharedSheet) {
        sharedSheet = new CSSStyleSheet();
        sharedSheet.replaceSync(CSS);
      }
      root.adoptedStyleSheets = [sharedSheet];
    }
    // Without constructable stylesheets (very old browsers) the widget works unstyled rather than
    // adding a <style> element that a strict style-src would refuse.
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  // A thumb: a cuff on the left and the hand; the thumbs-down button turns the same drawing over.
  const THUMB =
    "M2 10h4v11H2zM8 21V10l4.2-7.6c1.6.2 2.8 1.6 2.8 3.2V9h5.2c1.2 0 2.1 1.1 1.9 2.3l-1.5 7.9a2.2 2.2 0 0 1-2.2 1.8z";

  function element(tag, attributes = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text; // never innerHTML: nothing here is parsed as markup
    return node;
  }

  function thumbButton(className, label) {
    const button = element("button", {
      type: "button",
      class: className,
      part: `button ${className}`,
      "aria-label": label,
      "aria-pressed": "false",
    });
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", THUMB);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    button.append(svg);
    return button;
  }

  class FeedgateFeedback extends HTMLElement {
    static get observedAttributes() {
      return ["request-id"];
    }

    constructor() {
      super();
      this._stored = null; // the rating the gateway has confirmed: true, false or null
      this._chosen = null; // the latest click, shown at once while it is being sent
      this._next = null; // the body waiting to be sent after the one in flight
      this._inflight = null; // the body being sent
      this._sending = false;
      this._built = false;
    }

    connectedCallback() {
      if (!this._built) this._build();
    }

    attributeChangedCallback(name, oldValue, newValue) {
      // The same element reused for another answer starts afresh.
      if (name === "request-id" && this._built && oldValue !== newValue) this._reset();
    }

    get requestId() {
      return this.getAttribute("request-id") || "";
    }

    _build() {
      this._built = true;
      const root = this.attachShadow({ mode: "open" });
      adoptStyles(root);
      this._up = thumbButton("up", this.getAttribute("label-up") || "Rate up");
      this._down = thumbButton("down", this.getAttribute("label-down") || "Rate down");
      const groupLabel = this.getAttribute("label") || "Rate this answer";
      const bar = element("div", { class: "bar", role: "group", part: "bar", "aria-label": groupLabel });
      bar.append(this._up, this._down);

      this._box = element("div", { class: "comment", part: "comment", hidden: "" });
      const labelText = this.getAttribute("comment-label") || "What was wrong? (optional)";
      const label = element("label", { for: "comment" }, labelText);
      this._text = element("textarea", { id: "comment", maxlength: String(MAX_COMMENT), rows: "3" });
      this._send = element("button", { type: "button", class: "send", part: "button send" }, "Send");
      this._box.append(label, this._text, this._send);

      // role=status is a polite live region: "Thanks" and errors are read out without moving focus.
      this._status = element("p", { class: "status", part: "status", role: "status", "aria-live": "polite" });
      root.append(bar, this._box, this._status);

      this._up.addEventListener("click", () => this._rate(true));
      this._down.addEventListener("click", () => this._rate(false));
      this._send.addEventListener("click", () => this._sendComment());
    }

    _reset() {
      this._stored = this._chosen = this._next = null;
      this._text.value = "";
      this._box.hidden = true;
      this._say("");
      this._show();
    }

    _show() {
      this._up.setAttribute("aria-pressed", String(this._chosen === true));
      this._down.setAttribute("aria-pressed", String(this._chosen === false));
    }

    _say(message, isError = false) {
      this._status.textContent = message;
      this._status.classList.toggle("error", isError);
    }

    _rate(rating) {
      // _chosen is the last rating sent or queued: pressing it again adds nothing.
      if (this._chosen === rating && (this._stored === rating || this._sending)) {
        if (rating === false) this._box.hidden = false; // thumbs down again: offer the comment box again
        return;
      }
      this._chosen = rating;
      this._show();
      this._box.hidden = rating !== false;
      this._enqueue({ rating });
    }

    _sendComment() {
      const comment = this._text.value.trim();
      if (!comment) {
        this._say("Write a comment first, or leave it: your rating is saved.");
        return;
      }
      if (this._inflight && this._inflight.comment === comment) return; // a double click sends it once
      this._chosen = false;
      this._show();
      this._enqueue({ rating: false, comment });
    }

    /**
     * The latest click wins: one call at a time, in click order, and clicks made while one is in flight
     * collapse into the last of them, so the gateway never receives an older rating after a newer one.
     */
    _enqueue(body) {
      this._next = body;
      if (!this._sending) this._drain();
    }

    async _drain() {
      this._sending = true;
      try {
        while (this._next) {
          this._inflight = this._next;
          this._next = null;
          await this._post(this._inflight);
        }
      } finally {
        this._sending = false;
        this._inflight = null;
      }
    }

    async _post(body) {
      const requestId = this.requestId;
      try {
        await postFeedback(this.getAttribute("endpoint"), requestId, this.getAttribute("token"), body);
      } catch (error) {
        const status = error instanceof FeedbackError ? error.status : 0;
        const message = error instanceof FeedbackError ? error.message : "unexpected error";
        if (this.requestId !== requestId) return; // the element moved on to another answer meanwhile
        if (!this._next) {
          this._chosen = this._stored; // show what is actually stored
          this._show();
        }
        this._say(`Your feedback was not saved: ${message}`, true);
        emit(this, "feedgate:error", { requestId, status, message });
        return;
      }
      if (this.requestId !== requestId) return;
      this._stored = body.rating;
      if (body.comment) {
        const focusInBox = this._box.contains(this.shadowRoot.activeElement);
        this._text.value = "";
        this._box.hidden = true;
        if (focusInBox) this._down.focus(); // the box closes: keyboard users keep their place
      }
      if (!this._next) this._say(body.comment ? "Thanks, your comment was sent." : "Thanks for your feedback.");
      emit(this, "feedgate:rated", { requestId, rating: body.rating, comment: body.comment || null });
    }
  }

  window.customElements.define(TAG, FeedgateFeedback);

  /**
   * feedgate.signal(requestId, token, name, {endpoint, rating, metadata}): record an implicit signal
   * (`copied`, `code_accepted`, ...) for an answer. Resolves with {ok, status, message}; never rejects,
   * so a fire-and-forget call from a copy button cannot end in an unhandled rejection. A failure also
   * fires `feedgate:error` on the document.
   */
  async function signal(requestId, token, name, options = {}) {
    const rating = typeof options.rating === "boolean" ? options.rating : !NEGATIVE_SIGNALS.has(name);
    const body = { rating, kind: "implicit", signal: String(name) };
    if (options.metadata) body.metadata = options.metadata;
    try {
      const status = await postFeedback(options.endpoint, String(requestId || ""), token, body);
      return { ok: true, status, message: "" };
    } catch (error) {
      const status = error instanceof FeedbackError ? error.status : 0;
      const message = error instanceof FeedbackError ? error.message : "unexpected error";
      emit(document, "feedgate:error", { requestId, status, message, signal: String(name) });
      return { ok: false, status, message };
    }
  }

  window.feedgate = Object.freeze({ ...(window.feedgate || {}), signal });
})();
