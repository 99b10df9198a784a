// Light/dark: follow the system unless the user picked one with the toggle (kept in localStorage).
// A classic script in <head>, so the chosen theme applies before the first paint.
"use strict";
(function () {
  const KEY = "theme";
  const root = document.documentElement;
  const system = window.matchMedia("(prefers-color-scheme: dark)");
  let saved = null;
  try { saved = localStorage.getItem(KEY); } catch (_) { /* storage may be blocked */ }
  if (saved === "light" || saved === "dark") root.dataset.theme = saved;

  const current = () => root.dataset.theme || (system.matches ? "dark" : "light");

  function label(button) {
    const dark = current() === "dark";
    button.textContent = dark ? "Light" : "Dark";
    button.setAttribute("aria-label", dark ? "Switch to light mode" : "Switch to dark mode");
    button.setAttribute("aria-pressed", String(dark));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    label(button);
    system.addEventListener("change", () => label(button));
    button.addEventListener("click", () => {
      const next = current() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem(KEY, next); } catch (_) { /* the choice lasts this page only */ }
      label(button);
    });
  });
})();
