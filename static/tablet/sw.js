// The tablet app's service worker (served as /tablet/sw.js, scope /tablet/).
// It keeps the app shell in a versioned cache so the app opens without a network,
// serves the shell cache-first, drops old caches, and never touches /api/: answers
// of the API carry personal data and must always come from the server itself.
"use strict";

// The server replaces the mark with a digest of the shell's files: any change to
// them is a new service worker, hence a new cache.
const VERSION = "__SHELL_VERSION__";
const CACHE = "tablet-shell-" + VERSION;
const PREFIX = "tablet-shell-";

// The precached app shell (the server reads this list too: keep one URL a line).
// shell:begin
const SHELL = [
  "/tablet/",
  "/tablet/manifest.webmanifest",
  "/static/tablet/tablet.css",
  "/static/tablet/app.js",
  "/static/tablet/i18n.js",
  "/static/tablet/util.js",
  "/static/tablet/store.js",
  "/static/tablet/api.js",
  "/static/tablet/sha256.js",
  "/static/tablet/verify.js",
  "/static/tablet/camera.js",
  "/static/tablet/signature.js",
  "/static/tablet/qr.js",
  "/static/tablet/vendor/jsQR.js",
  "/static/tablet/vendor/qrcode.js",
  "/static/tablet/icon-192.png",
  "/static/tablet/icon-512.png",
];
// shell:end
const SHELL_PATHS = new Set(SHELL);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      // cache: "reload" skips the browser's HTTP cache: the shell is this version's files.
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names.filter((name) => name.startsWith(PREFIX) && name !== CACHE).map((name) => caches.delete(name))
        )
      )
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  // Never the API: not served from, nor written to, any cache.
  if (url.pathname.startsWith("/api/")) return;
  // Every page of the app is the one shell (the route lives in the app, not the URL).
  const key = request.mode === "navigate" && url.pathname.startsWith("/tablet/") ? "/tablet/" : url.pathname;
  if (!SHELL_PATHS.has(key)) return;
  event.respondWith(
    caches.open(CACHE).then((cache) =>
      cache.match(key).then((hit) => hit || fetch(request).then((response) => {
        if (response.ok && response.type === "basic") cache.put(key, response.clone());
        return response;
      }))
    )
  );
});
