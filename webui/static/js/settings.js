// Settings: enable Web Push on this device, and choose which events and quiet hours.
import { api } from "./api.js";
import { $, showError } from "./dom.js";

const state = $("push-state");
const errorBox = $("push-error");
const enableButton = $("push-enable");
const disableButton = $("push-disable");
const form = $("push-settings");
let publicKey = "";
// The browser's push service (Google's, Mozilla's, Apple's) answers in a second or two when reachable.
const SUBSCRIBE_TIMEOUT_MS = 10000;

function keyBytes(base64url) {
  const base64 = (base64url + "=".repeat((4 - (base64url.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

const supported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

async function currentSubscription() {
  const registration = await navigator.serviceWorker.ready;
  return registration.pushManager.getSubscription();
}

async function showDevice(devices) {
  if (!supported()) {
    state.textContent = "This browser cannot receive push notifications. On an iPhone, add the app to the home screen first.";
    enableButton.hidden = disableButton.hidden = true;
    return;
  }
  const mine = await currentSubscription();
  const here = mine && devices.some((d) => d.endpoint === mine.endpoint);
  const count = devices.length;
  const others = `${count} device${count === 1 ? "" : "s"} with notifications on.`;
  state.textContent = here ? `Notifications are on for this device. ${others}` : `Notifications are off for this device. ${others}`;
  enableButton.hidden = Boolean(here);
  disableButton.hidden = !here;
}

function fillSettings(settings) {
  for (const box of form.querySelectorAll('input[name="events"]')) box.checked = settings.events.includes(box.value);
  form.elements.quiet_start.value = settings.quiet_start ?? "";
  form.elements.quiet_end.value = settings.quiet_end ?? "";
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const names = [...new Set(["UTC", settings.time_zone, ...zones])];
  form.elements.time_zone.replaceChildren(...names.map((name) => new Option(name, name)));
  form.elements.time_zone.value = settings.time_zone;
}

async function load() {
  const data = await api("GET", "/api/push");
  publicKey = data.public_key;
  fillSettings(data.settings);
  await showDevice(data.subscriptions);
}

async function enable() {
  showError(errorBox, "");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    showError(errorBox, "Notifications are blocked for this site. Allow them in the browser's site settings, then try again.");
    return;
  }
  let subscription;
  state.textContent = "Asking this browser's push service for an address…";
  try {
    const registration = await navigator.serviceWorker.ready;
    const asked = registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(publicKey) });
    const silence = new Promise((_, fail) =>
      window.setTimeout(() => fail(new Error(`no answer in ${SUBSCRIBE_TIMEOUT_MS / 1000} s`)), SUBSCRIBE_TIMEOUT_MS),
    );
    subscription = await Promise.race([asked, silence]);
  } catch (error) {
    await load();
    showError(errorBox, `This browser could not reach its push service (${error.message || error.name}). Check the connection and try again.`);
    return;
  }
  await api("POST", "/api/push/subscriptions", { subscription: subscription.toJSON() });
  await load();
}

async function disable() {
  showError(errorBox, "");
  const subscription = await currentSubscription();
  if (subscription) {
    await api("DELETE", "/api/push/subscriptions", { endpoint: subscription.endpoint }).catch(() => {});
    await subscription.unsubscribe();
  }
  await load();
}

async function save(event) {
  event.preventDefault();
  showError(errorBox, "");
  $("push-saved").textContent = "";
  const body = {
    events: [...form.querySelectorAll('input[name="events"]:checked')].map((box) => box.value),
    quiet_start: form.elements.quiet_start.value || null,
    quiet_end: form.elements.quiet_end.value || null,
    time_zone: form.elements.time_zone.value,
  };
  try {
    fillSettings((await api("PUT", "/api/push/settings", body)).settings);
    $("push-saved").textContent = "Saved.";
  } catch (error) {
    showError(errorBox, error.message);
  }
}

const guarded = (action) => () => action().catch((error) => showError(errorBox, error.message));
enableButton.addEventListener("click", guarded(enable));
disableButton.addEventListener("click", guarded(disable));
form.addEventListener("submit", save);
guarded(load)();
