// The tablet's local data in IndexedDB: the device token, the route, and the queue of
// payouts and visits not yet answered by the server. The queue is never wiped by the
// app: it is money handed over that the server must still hear about.

const DB_NAME = "payout-tablet";
const DB_VERSION = 1;
export const META = "meta";
export const PEOPLE = "people";
export const QUEUE = "queue";
export const HISTORY = "history";

let opening = null;

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

/** Open (and on first use create) the database. */
export function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: "key" });
        if (!db.objectStoreNames.contains(PEOPLE)) db.createObjectStore(PEOPLE, { keyPath: "code" });
        if (!db.objectStoreNames.contains(QUEUE)) {
          db.createObjectStore(QUEUE, { keyPath: "client_ref" }).createIndex("code", "code");
        }
        if (!db.objectStoreNames.contains(HISTORY)) {
          db.createObjectStore(HISTORY, { keyPath: "client_ref" }).createIndex("code", "code");
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opening;
}

/** Read a meta value (undefined when absent). */
export async function getMeta(key) {
  const db = await open();
  const row = await promised(db.transaction(META).objectStore(META).get(key));
  return row ? row.value : undefined;
}

/** Write a meta value. */
export async function setMeta(key, value) {
  const db = await open();
  const tx = db.transaction(META, "readwrite");
  tx.objectStore(META).put({ key, value });
  return done(tx);
}

/** Read every row of a store. */
export async function all(store) {
  const db = await open();
  return promised(db.transaction(store).objectStore(store).getAll());
}

/** Read one row of a store. */
export async function get(store, key) {
  const db = await open();
  return promised(db.transaction(store).objectStore(store).get(key));
}

/** Add rows to the queue in one transaction: a confirmed payout is on disk before its receipt shows. */
export async function enqueue(item) {
  const db = await open();
  const tx = db.transaction(QUEUE, "readwrite");
  tx.objectStore(QUEUE).add(item);
  return done(tx);
}

/** Count the items waiting for the server. */
export async function queueCount() {
  const db = await open();
  return promised(db.transaction(QUEUE).objectStore(QUEUE).count());
}

/** Replace the route and its people in one transaction (the queue stays as it is). */
export async function replaceRoute(route, people) {
  const db = await open();
  const tx = db.transaction([META, PEOPLE], "readwrite");
  const store = tx.objectStore(PEOPLE);
  store.clear();
  for (const person of people) store.put(person);
  tx.objectStore(META).put({ key: "route", value: route });
  return done(tx);
}

/** Wipe the route's personal data (route, people, history); never the queue. */
export async function wipeRoute() {
  const db = await open();
  const tx = db.transaction([META, PEOPLE, HISTORY], "readwrite");
  tx.objectStore(PEOPLE).clear();
  tx.objectStore(HISTORY).clear();
  tx.objectStore(META).delete("route");
  return done(tx);
}

/** Wipe the route and forget the device (token and owner); never the queue. */
export async function wipeDevice() {
  const db = await open();
  const tx = db.transaction([META, PEOPLE, HISTORY], "readwrite");
  tx.objectStore(PEOPLE).clear();
  tx.objectStore(HISTORY).clear();
  const meta = tx.objectStore(META);
  for (const key of ["route", "token", "device"]) meta.delete(key);
  return done(tx);
}

/** Move answered items from the queue to the history, all in one transaction. */
export async function settle(entries) {
  const db = await open();
  const tx = db.transaction([QUEUE, HISTORY], "readwrite");
  const queue = tx.objectStore(QUEUE);
  const history = tx.objectStore(HISTORY);
  for (const entry of entries) {
    queue.delete(entry.client_ref);
    history.put(entry);
  }
  return done(tx);
}
