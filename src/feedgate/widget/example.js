// Wiring for the widget's example page (/widget/example). Plain DOM calls only: every value from the
// query string goes into an attribute or textContent, never into markup.
(() => {
  "use strict";

  const params = new URLSearchParams(window.location.search);
  const requestId = params.get("request_id");
  const token = params.get("token") || "";
  const events = document.getElementById("events");

  function note(text) {
    const item = document.createElement("li");
    item.textContent = text;
    events.append(item);
  }

  // The events bubble and are composed, so one listener on the document hears every widget on the page.
  document.addEventListener("feedgate:rated", (event) => {
    const { requestId: id, rating, comment } = event.detail;
    note(`feedgate:rated ${id}: ${rating ? "up" : "down"}${comment ? `, comment: ${comment}` : ""}`);
  });
  document.addEventListener("feedgate:error", (event) => {
    note(`feedgate:error ${event.detail.status}: ${event.detail.message}`);
  });

  if (requestId) {
    const widget = document.createElement("feedgate-feedback");
    widget.setAttribute("request-id", requestId);
    if (token) widget.setAttribute("token", token);
    document.getElementById("widget-slot").append(widget);
  } else {
    note("No request_id in the query string: see How to try it.");
  }

  // An implicit signal: the user copied the answer.
  document.getElementById("copy").addEventListener("click", async () => {
    const text = document.getElementById("answer").textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      // no clipboard permission: the signal still says what the user meant to do
    }
    if (!requestId) return;
    const result = await window.feedgate.signal(requestId, token, "copied");
    if (result.ok) note(`signal copied stored (${result.status})`);
  });
})();
