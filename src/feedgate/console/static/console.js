// The feedgate console's own script: keyboard shortcuts for the request list. Everything works without it.
// j / k move the focus to the next / previous row's link (a real link: Enter opens it, Tab still walks the
// page in order); / moves it to the first filter field.
"use strict";

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) {
    return;
  }
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) {
    return;
  }
  if (event.key === "/") {
    const first = document.querySelector("form.filters input, form.filters select");
    if (first) {
      first.focus();
      event.preventDefault();
    }
    return;
  }
  if (event.key !== "j" && event.key !== "k") {
    return;
  }
  const links = Array.from(document.querySelectorAll("a.open"));
  if (links.length === 0) {
    return;
  }
  const at = links.indexOf(document.activeElement);
  let next = 0;
  if (at !== -1) {
    next = event.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
  }
  links[next].focus();
  event.preventDefault();
});
